/**
 * kafkajs 2.2.4 (the latest release) arms a timer with `throttledUntil - Date.now()` in
 * `RequestQueue.scheduleCheckPendingRequests` (node_modules/kafkajs/src/network/requestQueue/index.js,
 * lines 312 and 317), and `throttledUntil` starts at -1 (line 57) until a broker throttles. The first
 * response on any connection therefore sets a timeout of about minus the epoch, and Node 24 prints
 * `TimeoutNegativeWarning: -17959… is a negative number` (once per process) on every command that
 * talks to Kafka. No option of ours leads there: it is upstream issue tulios/kafkajs#1751, open,
 * with unmerged fixes (#1755, #1768). Node clamps the delay to 1 ms, which is what kafkajs means.
 *
 * So that one warning, from that one place, is dropped here, where every kafkajs client of the
 * project is made; any other warning, a negative timeout of our own included, still prints.
 */
const KAFKAJS_REQUEST_QUEUE = /kafkajs[\\/]src[\\/]network[\\/]requestQueue[\\/]/;

const muted = new WeakSet<object>();

/** Idempotent; call before a kafkajs client first connects. `target` is for tests. */
export function muteKafkajsNegativeTimeoutWarning(
  target: Pick<NodeJS.Process, 'emitWarning'> = process,
): void {
  if (muted.has(target)) return;
  muted.add(target);
  const emitWarning = target.emitWarning;
  target.emitWarning = function (this: unknown, ...args: unknown[]): void {
    if (isKafkajsNegativeTimeout(args[0], args[1], new Error().stack)) return;
    Reflect.apply(emitWarning, this, args);
  } as typeof process.emitWarning;
}

/** True for the TimeoutNegativeWarning that kafkajs's request queue causes; `stack` is the emitter's. */
export function isKafkajsNegativeTimeout(warning: unknown, typeOrOptions: unknown, stack = ''): boolean {
  const type =
    warning instanceof Error
      ? warning.name
      : typeof typeOrOptions === 'string'
        ? typeOrOptions
        : (typeOrOptions as { type?: unknown } | undefined)?.type;
  return type === 'TimeoutNegativeWarning' && KAFKAJS_REQUEST_QUEUE.test(stack);
}
