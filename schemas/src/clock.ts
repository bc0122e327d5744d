/**
 * The contract's notion of "now", used by timestamp bounds (an `occurredAt` more than 24 hours in the
 * future is rejected). Real time by default; tests and replays pin it with {@link withNow}.
 *
 * Why a scoped override instead of schema factories: zod schemas are module-level values that other
 * packages import and compose, and zod v4 has no per-parse context. Parsing is synchronous, so a
 * set-and-restore around one `safeParse` call cannot leak into another parse.
 */

let pinned: Date | undefined;

/** The instant timestamp bounds are checked against: the pinned instant inside {@link withNow}, else the clock. */
export function contractNow(): Date {
  return pinned ?? new Date();
}

/**
 * Runs `fn` with {@link contractNow} pinned to `now`. Synchronous only: a promise returned by `fn`
 * would outlive the pin, so it is refused.
 */
export function withNow<T>(now: Date, fn: () => T): T {
  if (Number.isNaN(now.getTime())) throw new RangeError('withNow: invalid date');
  const previous = pinned;
  pinned = now;
  try {
    const result = fn();
    if (result instanceof Promise) throw new TypeError('withNow: fn must be synchronous');
    return result;
  } finally {
    pinned = previous;
  }
}
