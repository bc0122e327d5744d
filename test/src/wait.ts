import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

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

/**
 * Calls `probe` every `intervalMs` until it returns a value other than `undefined`, and returns
 * that value; rejects after `timeoutMs` with `describe()` and the last error the probe threw. For
 * conditions nothing announces (a port opening, an HTTP status): a wait on a condition with a
 * deadline, never a fixed sleep standing in for one.
 */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  describe: () => string,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}${cause}`);
    }
    await sleep(intervalMs);
  }
}

/** A free loopback port (the kernel picks one; it stays free long enough for a test). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
