import { randomBytes } from 'node:crypto';
import type { Logger } from '@assurance/core';
import type { SourceHealthStore } from '@assurance/redis';
import type { Tier } from '@assurance/schemas';
import { StreamClient, type Transmitter, type Unhealthy, unhealthy } from '@assurance/ssf';
import type { ApiMetrics } from './metrics.ts';

/**
 * Whether each Shared Signals transmitter's stream is healthy, as the API replicas find out
 * together through Redis, and which tiers must therefore fail closed.
 *
 * - Every `checkIntervalMs` each replica reads the stream's status through the transmitter's
 *   management API (when it has a `managementToken`) and asks for a verification when one is due
 *   (one replica at a time); `stream-updated` and verification SETs update the same record.
 * - Every second the replica reads the records back: answers never wait for Redis or a transmitter.
 * - A transmitter with `whenUnavailable: <tier>` whose stream is paused, disabled, unread for three
 *   check intervals, or unverified makes that tier and those above it fail closed for every identity
 *   (`signal_source_unavailable`): its subjects may be any identity, and what it would have said
 *   is unknown. A record that cannot be read counts as unhealthy.
 */
export interface SourceFloor {
  /** The lowest tier that fails closed. */
  readonly from: Tier;
  /** The transmitters responsible, with why. */
  readonly sources: ReadonlyArray<{ readonly name: string; readonly why: Unhealthy | 'unreadable' }>;
}

const ORDER: readonly Tier[] = ['low', 'medium', 'high', 'critical'];

export interface SourceHealthOptions {
  readonly transmitters: readonly Transmitter[];
  readonly store: SourceHealthStore;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  readonly checkIntervalMs: number;
  /** For transmitters that do not say: the policy's `sharedSignals.whenUnavailable`, else `high`. */
  readonly defaultFloor: Tier | 'never';
  readonly clock?: () => number;
}

export class SourceHealthWatch {
  readonly #o: SourceHealthOptions;
  readonly #clients = new Map<string, { client: StreamClient; streamId: string | undefined }>();
  #verdicts = new Map<string, { why: Unhealthy | 'unreadable' | undefined; at: number }>();
  #timers: NodeJS.Timeout[] = [];

  constructor(options: SourceHealthOptions) {
    this.#o = options;
    for (const t of options.transmitters)
      if (t.managementToken)
        this.#clients.set(t.name, {
          client: new StreamClient({ issuer: t.issuer, token: t.managementToken, timeoutMs: 5000 }),
          streamId: undefined,
        });
  }

  get #now(): number {
    return (this.#o.clock ?? Date.now)();
  }

  /**
   * Reads what is known once (so the first answers have a verdict), then keeps checking the
   * transmitters and reading in the background. The API does not wait on a transmitter to start:
   * until a stream's status is read, that transmitter counts as unknown, which fails closed.
   */
  async start(): Promise<void> {
    this.#checkInBackground();
    await this.refresh();
    this.#timers.push(
      setInterval(() => this.#checkInBackground(), this.#o.checkIntervalMs),
      setInterval(() => void this.refresh(), 1000),
    );
    for (const t of this.#timers) t.unref();
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    await this.#checking;
  }

  #checking: Promise<void> | undefined;

  /** One check at a time: a slow transmitter is not asked again while it is still being asked. */
  #checkInBackground(): void {
    this.#checking ??= this.check().finally(() => {
      this.#checking = undefined;
    });
  }

  /** The tiers that fail closed now, if any. */
  floor(): SourceFloor | undefined {
    const now = this.#now;
    let from: Tier | undefined;
    const sources: Array<{ name: string; why: Unhealthy | 'unreadable' }> = [];
    for (const t of this.#o.transmitters) {
      const floor = t.whenUnavailable ?? this.#o.defaultFloor;
      if (floor === 'never') continue;
      const v = this.#verdicts.get(t.name);
      // A verdict not refreshed for five seconds is as good as none.
      const why = v === undefined || now - v.at > 5000 ? 'unreadable' : v.why;
      if (why === undefined) continue;
      sources.push({ name: t.name, why });
      if (from === undefined || ORDER.indexOf(floor) < ORDER.indexOf(from)) from = floor;
    }
    return from === undefined ? undefined : { from, sources };
  }

  /** Reads every transmitter's record from Redis and judges it. */
  async refresh(): Promise<void> {
    const now = this.#now;
    for (const t of this.#o.transmitters) {
      let why: Unhealthy | 'unreadable' | undefined;
      try {
        const facts = await this.#o.store.read(t.name);
        why = unhealthy(
          facts,
          {
            statusRead: t.managementToken !== undefined,
            statusMaxAgeMs: 3 * this.#o.checkIntervalMs,
            verify: t.verify ? { maxAgeMs: t.verify.maxAgeMs } : undefined,
          },
          now,
        );
      } catch {
        why = 'unreadable';
      }
      const before = this.#verdicts.get(t.name)?.why;
      this.#verdicts.set(t.name, { why, at: now });
      this.#o.metrics.ssfSourceHealthy.set({ transmitter: t.name }, why === undefined ? 1 : 0);
      if (before !== why && this.#verdicts.size > 0)
        this.#o.logger[why === undefined ? 'info' : 'warn'](
          {
            transmitter: t.name,
            unhealthy: why ?? null,
            failsClosedFrom: t.whenUnavailable ?? this.#o.defaultFloor,
          },
          why === undefined ? 'Shared Signals stream healthy' : 'Shared Signals stream not healthy',
        );
    }
  }

  /** Reads each stream's status, and asks for a verification where one is due. */
  async check(): Promise<void> {
    const now = this.#now;
    for (const t of this.#o.transmitters) {
      const entry = this.#clients.get(t.name);
      if (!entry) continue;
      try {
        if (entry.streamId === undefined) {
          const found = await entry.client.getStream();
          entry.streamId = (Array.isArray(found) ? found[0] : found)?.stream_id;
        }
        if (entry.streamId === undefined) {
          // No stream for us: nothing will come. Recorded as such, so every replica sees it.
          await this.#o.store.setStatus(t.name, 'disabled', 'no stream at the transmitter', now);
          continue;
        }
        const status = await entry.client.status(entry.streamId);
        await this.#o.store.setStatus(t.name, status.status, status.reason, now);
        if (t.verify) {
          const facts = await this.#o.store.read(t.name);
          const due = facts.verifiedAt === undefined || now - facts.verifiedAt >= t.verify.everyMs;
          // One replica asks per interval (or per minute, whichever is shorter).
          const lock = Math.min(t.verify.everyMs, 60_000);
          if (due && status.status === 'enabled' && (await this.#o.store.mayAsk(t.name, lock))) {
            const state = randomBytes(16).toString('base64url');
            await this.#o.store.expectState(t.name, state, t.verify.maxAgeMs);
            await entry.client.requestVerification(entry.streamId, state);
          }
        }
      } catch (err) {
        // The stream may have been deleted and recreated: look it up again next time.
        entry.streamId = undefined;
        this.#o.logger.warn(
          { transmitter: t.name, err: err instanceof Error ? err.message : String(err) },
          "cannot read the Shared Signals stream's status; it counts as unknown once its last reading ages",
        );
      }
    }
  }
}
