import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CorruptStateError, eventIdOf, storedEventId } from './records.ts';

test('every event id reads back exactly as it was stored', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uuid(),
        fc.string({ minLength: 1, maxLength: 200 }),
        fc.string({ maxLength: 30 }).map((s) => `\u0001${s}`),
        fc.string({ maxLength: 30 }).map((s) => `\u0001\u0001${s}`),
      ),
      (id) => assert.equal(eventIdOf(storedEventId(id)), id),
    ),
    { numRuns: 2000 },
  );
});

test('a UUID is stored in 23 characters and UUIDs keep their order', () => {
  fc.assert(
    fc.property(fc.uuid(), fc.uuid(), (a, b) => {
      const [sa, sb] = [storedEventId(a), storedEventId(b)];
      assert.equal(sa.length, 23);
      assert.equal(sa < sb, a < b);
      assert.equal(sa === sb, a === b);
    }),
    { numRuns: 2000 },
  );
  // Uppercase or braced forms are not the canonical one: stored as they are.
  assert.equal(storedEventId('F46EBD9B-C065-4FF5-A39C-9D822D7D9517'), 'F46EBD9B-C065-4FF5-A39C-9D822D7D9517');
});

test('a stored id of an unknown form is corrupt state, not a guess', () => {
  assert.throws(() => eventIdOf('\u0001short'), CorruptStateError);
  assert.throws(() => eventIdOf(`\u0001${'!'.repeat(22)}`), CorruptStateError);
});
