import type { Logger } from '@assurance/core';
import { z } from 'zod';
import type { Received, SetReceiver } from './receiver.ts';
import { KeysUnavailable, SetRejection } from './verify.ts';

/**
 * Poll delivery (RFC 8936): SETs fetched from a transmitter's poll endpoint, each received as a
 * pushed one would be, and answered in the next request: acknowledged (`ack`) when applied or
 * deliberately ignored, refused with its RFC 8935 error (`setErrs`) when invalid, and neither when
 * it could not be handled now (keys or Kafka unavailable), so the transmitter delivers it again.
 */

const PollResponse = z.looseObject({
  sets: z.record(z.string(), z.string()),
  moreAvailable: z.boolean().optional(),
});

/** The metric outcome of one SET, the same for push and poll. */
export function outcomeOf(result: Received | SetRejection | 'retry'): string {
  if (result === 'retry') return 'retry';
  if (result instanceof SetRejection) return `rejected_${result.reason}`;
  if (result.kind === 'ignored') return `ignored_${result.why}`;
  if (result.kind === 'verification') return result.verified ? 'verification' : 'verification_unsolicited';
  return result.kind;
}

export interface PollerOptions {
  readonly receiver: SetReceiver;
  /** The transmitter's name in the transmitters file. */
  readonly transmitter: string;
  readonly endpoint: URL;
  readonly token: string;
  readonly maxEvents: number;
  /** The wait after a poll that returned nothing more (and after a failed poll, doubled up to 30 s). */
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly onOutcome?: (outcome: string) => void;
  readonly fetch?: typeof fetch;
}

export interface PollResult {
  readonly received: number;
  readonly acknowledged: number;
  readonly refused: number;
  readonly retried: number;
  readonly moreAvailable: boolean;
}

export class Poller {
  readonly #o: PollerOptions;
  /** Answers owed to the transmitter, sent with the next request (again if that request fails). */
  #ack = new Set<string>();
  #setErrs = new Map<string, { err: string; description: string }>();
  #running: Promise<void> | undefined;
  #stop = new AbortController();

  constructor(options: PollerOptions) {
    this.#o = options;
  }

  /** One request: sends what is owed, receives up to `maxEvents` SETs and handles them. */
  async pollOnce(): Promise<PollResult> {
    const ack = [...this.#ack];
    const setErrs = Object.fromEntries(this.#setErrs);
    const r = await (this.#o.fetch ?? fetch)(this.#o.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#o.token}` },
      body: JSON.stringify({
        maxEvents: this.#o.maxEvents,
        returnImmediately: true,
        ...(ack.length > 0 ? { ack } : {}),
        ...(this.#setErrs.size > 0 ? { setErrs } : {}),
      }),
      signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(30_000)]),
    });
    if (r.status !== 200)
      throw new Error(`poll ${this.#o.endpoint}: ${r.status} ${(await r.text()).slice(0, 200)}`);
    const body = PollResponse.parse(await r.json());
    // The transmitter has our answers now.
    for (const jti of ack) this.#ack.delete(jti);
    for (const jti of Object.keys(setErrs)) this.#setErrs.delete(jti);
    let acknowledged = 0;
    let refused = 0;
    let retried = 0;
    for (const [jti, token] of Object.entries(body.sets)) {
      try {
        const received = await this.#o.receiver.receive(this.#o.transmitter, token);
        this.#ack.add(jti);
        acknowledged++;
        this.#o.onOutcome?.(outcomeOf(received));
      } catch (err) {
        if (err instanceof SetRejection) {
          this.#setErrs.set(jti, { err: err.err, description: err.description });
          refused++;
          this.#o.onOutcome?.(outcomeOf(err));
        } else {
          // Keys or Kafka unavailable, or anything unexpected: not answered, so delivered again.
          retried++;
          this.#o.onOutcome?.('retry');
          this.#o.logger.warn(
            {
              transmitter: this.#o.transmitter,
              jti,
              err: err instanceof KeysUnavailable ? err.message : err,
            },
            'polled SET not handled now; the transmitter delivers it again',
          );
        }
      }
    }
    return {
      received: Object.keys(body.sets).length,
      acknowledged,
      refused,
      retried,
      moreAvailable: body.moreAvailable === true,
    };
  }

  /** Polls until stopped: at once while more is available, else every `intervalMs`. */
  start(): void {
    if (this.#running) return;
    this.#running = (async () => {
      let wait = this.#o.intervalMs;
      while (!this.#stop.signal.aborted) {
        try {
          const r = await this.pollOnce();
          wait = r.moreAvailable ? 0 : this.#o.intervalMs;
        } catch (err) {
          if (this.#stop.signal.aborted) break;
          wait = Math.min(Math.max(wait * 2, this.#o.intervalMs), 30_000);
          this.#o.logger.warn({ transmitter: this.#o.transmitter, err }, 'poll failed; trying again');
        }
        if (wait > 0) await sleep(wait, this.#stop.signal);
      }
    })();
  }

  /** Stops polling; answers still owed are sent by the next poller (the transmitter redelivers). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
