import type { Logger } from '@assurance/core';
import type { MetaStore, RedisConnection as Redis, StoreStatus } from '@assurance/redis';
import { STATE_FORMAT } from '@assurance/redis';
import type { DegradedReason } from './schemas.ts';

/**
 * Whether the state in Redis may be answered from (docs/state.md, reading): the store must carry
 * a fingerprint (no fingerprint: a lost, flushed or foreign store, or another prefix or database
 * than the engine's), an engine must have verified it since Redis last started (a restart may have
 * lost the last writes), no partition may still be replaying after a data loss, and the engines
 * must decide with this API's policy. Each failing condition is a degraded reason; the state is
 * then not used.
 *
 * The run id of the Redis process is read on every (re)connection: a restarted Redis has a new
 * one, so the engine's verification mark no longer matches until an engine verifies it again.
 */
const CLUSTER_CHANGES = ['+node', '-node', 'node error', 'refresh'] as const;

export class StoreTrust {
  readonly #redis: Redis;
  readonly #meta: MetaStore;
  readonly #policyDigest: string;
  readonly #logger: Logger;
  #runId: string | null = null;
  readonly #onReady = () => void this.refresh();
  readonly #onTopology = () => {
    this.#runId = null;
    void this.refresh();
  };

  constructor(redis: Redis, meta: MetaStore, policyDigest: string, logger: Logger) {
    this.#redis = redis;
    this.#meta = meta;
    this.#policyDigest = policyDigest;
    this.#logger = logger;
    redis.on('ready', this.#onReady);
    // A connection that drops may come back to another process: distrust until we know.
    redis.on('close', () => {
      this.#runId = null;
    });
    // A cluster's primaries come and go without the connection as a whole closing; reads of an
    // identity check their own primary (`#verified`), this covers answers without one.
    for (const event of CLUSTER_CHANGES) redis.on(event, this.#onTopology);
  }

  get runId(): string | null {
    return this.#runId;
  }

  async refresh(): Promise<void> {
    try {
      this.#runId = await this.#meta.runId();
    } catch (err) {
      this.#runId = null;
      this.#logger.warn(
        { err: (err as Error).message },
        'cannot read the Redis run id; answers stay degraded',
      );
    }
  }

  stop(): void {
    this.#redis.off('ready', this.#onReady);
    for (const event of CLUSTER_CHANGES) this.#redis.off(event, this.#onTopology);
  }

  /**
   * One server: the process this connection reaches is the one verified. A cluster: the primary
   * that answered this read is one the store was verified on (a failover or a restart of any other
   * primary does not concern this identity's state, which lives on one).
   */
  #verified(status: StoreStatus): boolean {
    if (status.verifiedRunId === null) return false;
    if (status.servedBy !== undefined) return status.verifiedRunId.split('+').includes(status.servedBy);
    return this.#runId !== null && status.verifiedRunId === this.#runId;
  }

  reasons(status: StoreStatus): DegradedReason[] {
    if (status.epoch === null) return ['store_lost'];
    const out: DegradedReason[] = [];
    if (status.format !== STATE_FORMAT || !this.#verified(status)) {
      out.push('store_unverified');
    }
    if (status.recovering > 0) out.push('store_recovering');
    if (status.policy !== this.#policyDigest) out.push('policy_mismatch');
    return out;
  }
}
