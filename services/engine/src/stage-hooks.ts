import { AssuranceError } from '@assurance/core';
import type { ConsumerEvents } from '@assurance/kafka';
import type { MetaStore } from '@assurance/redis';
import type { EngineStage } from '@assurance/schemas';
import type { EngineMetrics } from './metrics.ts';
import type { StoreGuard } from './store-guard.ts';

type Assigned = ReadonlyArray<{ topic: string; partitions: number[] }>;

/**
 * What each stage's consumer reports to the rest of the engine: progress to Redis before offsets
 * to Kafka, where to resume after a store lost writes, lag metrics for the partitions it holds, and
 * a crash it cannot recover from.
 */
export class StageHooks {
  readonly #meta: MetaStore;
  readonly #guard: StoreGuard;
  readonly #metrics: EngineMetrics;
  readonly #onFatal: (error: Error) => void;
  /** Lag series per stage, so a partition this engine lost in a rebalance stops reporting a stale value. */
  readonly #series = new Map<string, Set<string>>();

  constructor(d: {
    meta: MetaStore;
    guard: StoreGuard;
    metrics: EngineMetrics;
    onFatal: (error: Error) => void;
  }) {
    this.#meta = d.meta;
    this.#guard = d.guard;
    this.#metrics = d.metrics;
    this.#onFatal = d.onFatal;
  }

  for(stage: EngineStage): ConsumerEvents {
    return {
      onCrash: (error, restarting) => {
        if (!restarting) this.#onFatal(error);
      },
      onGroupJoin: (assigned) => this.#forgetLost(stage, assigned),
      // Progress reaches Redis before the offset reaches Kafka: Kafka ahead of Redis then means Redis
      // lost writes (store-guard.ts).
      beforeCommit: async (done) => {
        try {
          await this.#meta.recordProgress([{ stage, ...done }], Date.now());
        } catch (err) {
          // A server that restarted or failed over refused the progress: hold batches and look for
          // what it lost before anything else commits (the batch itself is redelivered).
          if (err instanceof AssuranceError && err.code === 'store_lost') this.#guard.changed(err.message);
          throw err;
        }
      },
      resumeFrom: (assigned) => this.#guard.resumeFrom(stage, assigned),
      onBatchDone: (i) => {
        this.#series.get(stage)?.add(`${i.topic}|${i.partition}`);
        const labels = { stage, topic: i.topic, partition: String(i.partition) };
        this.#metrics.lag.set(labels, i.lag);
        this.#metrics.progressOffset.set(labels, Number(i.nextOffset));
        this.#metrics.progressTime.set(labels, Date.now() / 1000);
      },
    };
  }

  #forgetLost(stage: string, assigned: Assigned): void {
    const keep = new Set(assigned.flatMap((a) => a.partitions.map((p) => `${a.topic}|${p}`)));
    for (const key of this.#series.get(stage) ?? []) {
      if (keep.has(key)) continue;
      const [topic = '', partition = ''] = key.split('|');
      for (const gauge of [this.#metrics.lag, this.#metrics.progressOffset, this.#metrics.progressTime]) {
        gauge.remove({ stage, topic, partition });
      }
    }
    this.#series.set(stage, keep);
  }
}
