import type { Logger } from '@assurance/core';
import type { TopicNames } from '@assurance/engine';
import { INPUT_ROLES } from '@assurance/engine';
import type { AdminPort } from '@assurance/kafka';
import type { ApiMetrics } from './metrics.ts';

/** One measurement of how far the engine is behind, in messages. */
export interface LagSample {
  readonly atMs: number;
  /** `<group>.router` on the six input topics. */
  readonly router: number;
  /** `<group>.decider` on the internal identity-keyed topic. */
  readonly decider: number;
}

/** What the read path needs to know about the engine, from the last measurement. */
export type LagStatus =
  | { readonly state: 'ok' | 'lagging'; readonly lag: number; readonly ageMs: number }
  | { readonly state: 'unknown'; readonly ageMs: number | null; readonly error: string | null };

export interface LagMonitorOptions {
  readonly admin: AdminPort;
  readonly groupId: string;
  readonly topics: TopicNames;
  readonly intervalMs: number;
  /** A sample older than this is no evidence at all: the state becomes unknown. */
  readonly maxAgeMs: number;
  readonly maxLag: number;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly clock?: () => number;
}

function sum(parts: ReadonlyArray<{ lag: number }>): number {
  return parts.reduce((total, p) => total + p.lag, 0);
}

/**
 * Measures the engine's consumer lag in the background, every `intervalMs`, so requests only read
 * a cached number. A measurement that fails or hangs leaves the last sample to age; once it is
 * older than `maxAgeMs` the lag is unknown, which the read path treats like too much lag.
 */
export class EngineLagMonitor {
  readonly #o: LagMonitorOptions;
  readonly #now: () => number;
  #sample: LagSample | undefined;
  #lastError: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #inFlight: Promise<LagSample | undefined> | undefined;
  /** The Kafka requests of the last measurement, until they settle (possibly after our timeout). */
  #underway: Promise<void> | undefined;

  constructor(options: LagMonitorOptions) {
    this.#o = options;
    this.#now = options.clock ?? Date.now;
  }

  /** Takes a first measurement (so a fresh process does not start degraded), then keeps measuring. */
  async start(): Promise<void> {
    await this.refresh();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.refresh().finally(() => this.#schedule());
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Measures now (joining a measurement already running); resolves with the new sample, if any. */
  refresh(): Promise<LagSample | undefined> {
    this.#inFlight ??= this.#measure().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #measure(): Promise<LagSample | undefined> {
    const { admin, groupId, topics } = this.#o;
    // Kafka requests outlive our timeout (the client retries them): never pile up a second set.
    if (this.#underway) return undefined;
    const measured = Promise.all([
      Promise.all(INPUT_ROLES.map((role) => admin.lag(`${groupId}.router`, topics[role]))),
      admin.lag(`${groupId}.decider`, topics.identityEvents),
    ]);
    const underway = measured.then(
      () => undefined,
      () => undefined,
    );
    this.#underway = underway;
    void underway.then(() => {
      if (this.#underway === underway) this.#underway = undefined;
    });
    let timeout: NodeJS.Timeout | undefined;
    try {
      const expired = new Promise<never>((_, reject) => {
        timeout = setTimeout(() => reject(new Error('lag measurement timed out')), this.#o.maxAgeMs);
      });
      const [router, decider] = await Promise.race([measured, expired]);
      const sample = { atMs: this.#now(), router: sum(router.flat()), decider: sum(decider) };
      this.#sample = sample;
      this.#lastError = null;
      this.#o.metrics.engineLag.set({ stage: 'router' }, sample.router);
      this.#o.metrics.engineLag.set({ stage: 'decider' }, sample.decider);
      return sample;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (this.#lastError !== message) this.#o.logger.warn({ err: message }, 'engine lag measurement failed');
      this.#lastError = message;
      return undefined;
    } finally {
      clearTimeout(timeout);
    }
  }

  /** Why the last measurement failed, or null when it succeeded. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** The last good sample, if any. */
  get sample(): LagSample | undefined {
    return this.#sample;
  }

  status(nowMs: number = this.#now()): LagStatus {
    const s = this.#sample;
    const ageMs = s ? Math.max(0, nowMs - s.atMs) : null;
    this.#o.metrics.lagSampleAge.set(ageMs === null ? -1 : ageMs / 1000);
    if (!s || ageMs === null || ageMs > this.#o.maxAgeMs) {
      return { state: 'unknown', ageMs, error: this.#lastError };
    }
    const lag = s.router + s.decider;
    return { state: lag > this.#o.maxLag ? 'lagging' : 'ok', lag, ageMs };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
  }
}
