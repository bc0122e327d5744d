import { setImmediate as yieldNow } from 'node:timers/promises';
import type { Logger } from '@assurance/core';
import type { OutboundMessage, ProducerPort } from '@assurance/kafka';
import { compareTiers, type Evaluation, evaluate, type Policy } from '@assurance/policy';
import type { IdentityState, ShadowRecord, Trigger } from '@assurance/schemas';
import type { EngineMetrics } from './metrics.ts';

/**
 * Shadow policies (SHADOW_POLICIES): every live decision, once Kafka acknowledged it, is evaluated
 * again by each candidate policy on the same state at the same instant, and how each tier would
 * move goes to `assurance.shadow.v1`.
 *
 * A shadow never touches a live decision: it runs after the decision is published, off the
 * decider's path (a bounded queue drained between batches), and whatever it does (throw, run slow,
 * fail to produce) is counted and logged, never thrown. When the queue is full, jobs are dropped
 * and counted: the shadow stream is an analysis, not a record.
 */
export interface ShadowJob {
  readonly state: IdentityState;
  readonly now: Date;
  /** The live evaluation the decision was built from. */
  readonly live: Evaluation;
  readonly sequence: number;
  readonly trigger: Trigger;
}

export interface ShadowSink {
  submit(jobs: readonly ShadowJob[]): void;
}

export interface ShadowRunnerOptions {
  readonly shadows: ReadonlyMap<string, Policy>;
  readonly live: Policy;
  readonly producer: ProducerPort;
  readonly topic: string;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  /** Jobs waiting at most; beyond, new ones are dropped (default 10,000). */
  readonly maxQueue?: number;
  /** An evaluation longer than this is counted slow (default 50 ms). */
  readonly slowMs?: number;
  /** For tests: replaces `evaluate` (a shadow that throws, or runs slow). */
  readonly evaluate?: typeof evaluate;
}

export class ShadowRunner implements ShadowSink {
  readonly #o: ShadowRunnerOptions;
  readonly #queue: ShadowJob[] = [];
  #draining: Promise<void> | undefined;

  constructor(options: ShadowRunnerOptions) {
    this.#o = options;
  }

  submit(jobs: readonly ShadowJob[]): void {
    const max = this.#o.maxQueue ?? 10_000;
    for (const job of jobs) {
      if (this.#queue.length >= max) {
        for (const name of this.#o.shadows.keys()) this.#o.metrics.shadowDropped.inc({ shadow: name });
        continue;
      }
      this.#queue.push(job);
    }
    this.#draining ??= this.#drain()
      .catch((err: unknown) =>
        this.#o.logger.error({ err }, 'shadow evaluation stopped; live decisions are unaffected'),
      )
      .finally(() => {
        this.#draining = undefined;
      });
  }

  /** Resolves once the queue is empty (tests; a stopping engine waits for it at most briefly). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  async #drain(): Promise<void> {
    // After the batch that submitted: the decider goes on first.
    await yieldNow();
    while (this.#queue.length > 0) {
      const jobs = this.#queue.splice(0, 100);
      const out: OutboundMessage[] = [];
      for (const job of jobs) {
        for (const [name, policy] of this.#o.shadows) out.push(this.#evaluate(name, policy, job));
        await yieldNow();
      }
      try {
        await this.#o.producer.send(out);
      } catch (err) {
        for (const name of this.#o.shadows.keys())
          this.#o.metrics.shadowProduceFailures.inc({ shadow: name });
        this.#o.logger.warn(
          { err: (err as Error).message, records: out.length },
          'shadow records not produced',
        );
      }
    }
  }

  #evaluate(name: string, policy: Policy, job: ShadowJob): OutboundMessage {
    const started = performance.now();
    let failed = false;
    const evaluation = (this.#o.evaluate ?? evaluate)(policy, job.state, job.now, (err) => {
      failed = true;
      this.#o.logger.warn(
        { shadow: name, err },
        'shadow policy evaluation failed (its tiers are the strictest)',
      );
    });
    const ms = performance.now() - started;
    if (ms > (this.#o.slowMs ?? 50)) this.#o.metrics.shadowSlow.inc({ shadow: name });
    if (failed) this.#o.metrics.shadowErrors.inc({ shadow: name });
    const tiers = compareTiers(job.live.tiers, evaluation.tiers);
    for (const t of tiers)
      this.#o.metrics.shadowTransitions.inc({ shadow: name, tier: t.tier, direction: t.direction });
    const record: ShadowRecord = {
      identityId: job.state.identityId,
      shadow: name,
      sequence: job.sequence,
      livePolicyVersion: this.#o.live.version,
      shadowPolicyVersion: policy.version,
      shadowPolicyDigest: policy.digest,
      computedAt: job.now.toISOString(),
      liveRisk: job.live.riskLevel,
      shadowRisk: evaluation.riskLevel,
      failed,
      tiers: tiers.map((t) => ({
        ...t,
        reasonsAdded: [...t.reasonsAdded],
        reasonsRemoved: [...t.reasonsRemoved],
      })),
      trigger: job.trigger,
    };
    return {
      topic: this.#o.topic,
      key: job.state.identityId,
      value: JSON.stringify(record),
      headers: { 'content-type': 'application/json', 'x-shadow': name },
    };
  }
}
