import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { isKafkajsNegativeTimeout, muteKafkajsNegativeTimeoutWarning } from './warnings.ts';

const require = createRequire(import.meta.url);

/** Warnings as Node delivers them to listeners (the default handler prints the same ones). */
function collectWarnings(): { seen: Error[]; stop: () => void } {
  const seen: Error[] = [];
  const listener = (w: Error) => seen.push(w);
  process.on('warning', listener);
  return { seen, stop: () => process.off('warning', listener) };
}

const nextTick = () => new Promise((resolve) => setImmediate(resolve));

test("kafkajs's request queue arms a negative timeout, and only that warning is muted", async () => {
  muteKafkajsNegativeTimeoutWarning();
  const w = collectWarnings();
  try {
    // The very code path of a live connection after its first response (no broker needed).
    const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as new (
      o: object,
    ) => { scheduleCheckPendingRequests(): void; destroy(): void };
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const queue = new RequestQueue({ logger: quiet, clientId: 't', broker: 'b', requestTimeout: 1000 });
    queue.scheduleCheckPendingRequests();
    queue.destroy();
    await nextTick();
    assert.deepEqual(
      w.seen.map((x) => x.name),
      [],
    );
  } finally {
    w.stop();
  }
});

test('the same warning from anywhere else, and any other warning, still goes through', () => {
  const passed: unknown[][] = [];
  const target = { emitWarning: (...args: unknown[]) => void passed.push(args) };
  muteKafkajsNegativeTimeoutWarning(target as Pick<NodeJS.Process, 'emitWarning'>);
  target.emitWarning('-5 is a negative number.', 'TimeoutNegativeWarning');
  target.emitWarning('something else', { type: 'DeprecationWarning' });
  assert.deepEqual(passed, [
    ['-5 is a negative number.', 'TimeoutNegativeWarning'],
    ['something else', { type: 'DeprecationWarning' }],
  ]);
});

test('the filter matches on the warning type and the emitting frame, in each emitWarning form', () => {
  const kafkajsStack =
    'Error\n    at new Timeout (node:internal/timers:233:17)\n    at RequestQueue.scheduleCheckPendingRequests (/app/node_modules/kafkajs/src/network/requestQueue/index.js:317:37)';
  assert.equal(isKafkajsNegativeTimeout('-1 is negative', 'TimeoutNegativeWarning', kafkajsStack), true);
  assert.equal(
    isKafkajsNegativeTimeout('-1 is negative', { type: 'TimeoutNegativeWarning' }, kafkajsStack),
    true,
  );
  const asError = Object.assign(new Error('-1 is negative'), { name: 'TimeoutNegativeWarning' });
  assert.equal(isKafkajsNegativeTimeout(asError, undefined, kafkajsStack), true);
  assert.equal(
    isKafkajsNegativeTimeout('-1', 'TimeoutNegativeWarning', kafkajsStack.replaceAll('/', '\\')),
    true,
  );
  assert.equal(isKafkajsNegativeTimeout('x', 'TimeoutOverflowWarning', kafkajsStack), false);
  assert.equal(
    isKafkajsNegativeTimeout('-1', 'TimeoutNegativeWarning', 'Error\n    at ours (/app/src/x.ts:1:1)'),
    false,
  );
});
