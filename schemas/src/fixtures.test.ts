import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContractError } from './contract-error.ts';
import { loadFixtures } from './fixtures.ts';
import { INPUT_TOPICS, VALUE_TOPICS } from './topics.ts';
import { decodeMessage, keyFor, keyMatches, validateEvent } from './wire.ts';

const all = loadFixtures();

describe('golden fixtures', () => {
  it('cover every value topic, with at least 3 valid and 5 invalid per input topic', () => {
    assert.deepEqual(all.map((f) => f.topic).sort(), [...VALUE_TOPICS].sort());
    for (const f of all) {
      const min = (INPUT_TOPICS as string[]).includes(f.topic) ? [3, 5] : [1, 1];
      assert.ok(f.valid.length >= (min[0] ?? 0), `${f.topic}: valid fixtures`);
      assert.ok(f.invalid.length >= (min[1] ?? 0), `${f.topic}: invalid fixtures`);
    }
  });

  it('list every fixture file in cases.json, exactly once', () => {
    for (const f of all) {
      const listed = [...f.valid, ...f.invalid].map((c) => c.file).sort();
      assert.deepEqual(listed, [...f.files].sort(), f.topic);
    }
  });

  for (const { topic, now, valid, invalid } of all) {
    describe(topic, () => {
      for (const c of valid) {
        it(`accepts ${c.file}: ${c.about}`, () => {
          const { value, encoding } = decodeMessage(topic, c.bytes, { now });
          assert.equal(encoding, 'json');
          assert.deepEqual(value, c.expected);
          assert.equal(keyFor(topic, value), c.key);
          assert.ok(keyMatches(topic, Buffer.from(c.key), value));
          // Normalization is idempotent: the normalized value is itself a valid, unchanged input.
          assert.deepEqual(validateEvent(topic, value, { now }), value);
        });
      }
      for (const c of invalid) {
        it(`rejects ${c.file}: ${c.about}`, () => {
          assert.throws(
            () => decodeMessage(topic, c.bytes, { now }),
            (error: unknown) => {
              assert.ok(error instanceof ContractError, `not a ContractError: ${String(error)}`);
              assert.equal(error.code, c.code, error.message);
              const paths = error.issues.map((i) => i.slice(0, i.indexOf(': ')));
              assert.deepEqual([...new Set(paths)].sort(), [...c.paths].sort(), error.issues.join('\n'));
              if (c.message !== undefined) {
                const texts = [error.message, ...error.issues];
                assert.ok(
                  texts.some((t) => t.includes(c.message as string)),
                  `no issue mentions "${c.message}": ${texts.join(' | ')}`,
                );
              }
              return true;
            },
          );
        });
      }
    });
  }
});
