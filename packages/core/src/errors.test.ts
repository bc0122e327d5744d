import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { envBoolean, envDuration } from './config.ts';
import { AssuranceError, asAssuranceError, dispositionOf, ERROR_CODES } from './errors.ts';

test('every error code has one disposition, and the error reports it', () => {
  for (const code of ERROR_CODES) {
    const d = dispositionOf(code);
    assert.ok(['dead_letter', 'retry', 'quarantine', 'stop'].includes(d), code);
    assert.equal(new AssuranceError(code, 'x').disposition, d, code);
  }
  assert.equal(dispositionOf('kafka_rejected'), 'stop');
  assert.equal(dispositionOf('registry_unavailable'), 'retry');
  assert.equal(dispositionOf('unknown_schema_id'), 'dead_letter');
});

test('wrapping keeps the original as cause', () => {
  const original = new Error('boom');
  const wrapped = asAssuranceError(original, 'redis_unavailable');
  assert.equal(wrapped.cause, original);
  assert.equal(wrapped.code, 'redis_unavailable');
});

test('the string "false" is false', () => {
  assert.equal(envBoolean.parse('false'), false);
  assert.equal(envBoolean.parse('1'), true);
  assert.throws(() => envBoolean.parse('maybe'));
});

test('durations', () => {
  const s = z.object({ d: envDuration });
  assert.equal(s.parse({ d: '72h' }).d, 72 * 3_600_000);
  assert.throws(() => s.parse({ d: '3 days' }), /expected a duration/);
});
