import type { EventEmitter } from 'node:events';

/**
 * Resolves with the first event on `emitter` for which `match` returns true. The listener stays
 * attached for the whole wait: events emitted synchronously in a burst (a whole batch) are all
 * seen, which a loop of `once()` calls would miss.
 */
export function waitForEvent<T>(
  emitter: EventEmitter,
  event: string,
  match: (value: T) => boolean,
  timeoutMs: number,
  describe: () => string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onEvent = (value: T) => {
      if (!match(value)) return;
      cleanup();
      resolve(value);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}: ${describe()}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
    };
    emitter.on(event, onEvent);
  });
}

/** Collects `n` events from `emitter` (listener attached before anything is sent). */
export function collectEvents<T>(
  emitter: EventEmitter,
  event: string,
  n: number,
  timeoutMs = 30_000,
): Promise<T[]> {
  const seen: T[] = [];
  return waitForEvent<T>(
    emitter,
    event,
    (v) => {
      seen.push(v);
      return seen.length >= n;
    },
    timeoutMs,
    () => `only ${seen.length}/${n}`,
  ).then(() => seen);
}
