import type { Logger } from '@assurance/core';
import { AssuranceError } from '@assurance/core';
import type { AdminPort } from '@assurance/kafka';
import type { Fingerprint, MetaStore, RedisConnection as Redis, Seal } from '@assurance/redis';
import { STATE_FORMAT } from '@assurance/redis';
import type { EngineMetrics } from './metrics.ts';

/**
 * Keeps the pipeline from deciding with a store that lost data (docs/state.md, data loss).
 *
 * - At start, on every reconnect to Redis and whenever the fingerprint or epoch changes, the store
 *   is verified: Redis must not evict, the fingerprint must be this deployment's (key prefix,
 *   channel secret), a store lost as a whole is recovered from Kafka, and every partition whose
 *   progress in Redis is behind the offset committed to Kafka is replayed from where Redis stopped,
 *   under a new epoch.
 * - Until then, and whenever a check fails, batches are held (`store_lost`, retried).
 * - Around every batch, the epoch is read again before anything is produced: a batch that ran
 *   while the store was lost or moved to a new epoch produces nothing and is redelivered.
 */

/** A batch's view of the store when it started. */
export interface Pass {
  readonly generation: number;
  readonly epoch: number;
}

export interface BatchGuard {
  /** Why batches must wait now, or undefined when the store is verified. */
  hold(): AssuranceError | undefined;
  begin(): Pass;
  /** After a batch's Redis work, before its output leaves: an error if the store changed meanwhile. */
  verify(pass: Pass): Promise<AssuranceError | undefined>;
  /** The epoch decisions are made in now. */
  readonly epoch: number;
}

/** Every stage's consumer group and topics, to compare Kafka's committed offsets with Redis progress. */
export interface StageGroup {
  readonly stage: string;
  readonly groupId: string;
  readonly topics: readonly string[];
}

/**
 * Recovers a store lost as a whole (recovery.ts): `markFirst` records which partitions must be
 * replayed before anything is rebuilt, then the store is seeded from the decisions topic and its
 * fingerprint written. Returns the epoch it starts in.
 */
export type LostStoreRecovery = (markFirst: () => Promise<number>) => Promise<number>;
/** Seeds the store from the decisions topic (a gap no partition can replay). */
export type DecisionSeeding = () => Promise<void>;

export interface StoreGuardDeps {
  readonly redis: Redis;
  /** Commits the offsets the consumers queued (backgroundCommits), before Kafka is compared with Redis. */
  readonly flushCommits?: () => Promise<void>;
  readonly meta: MetaStore;
  readonly admin: AdminPort;
  readonly stages: readonly StageGroup[];
  readonly prefix: string;
  readonly secretDigest: string;
  readonly policyDigest: string;
  readonly recoverLost: LostStoreRecovery;
  readonly seed: DecisionSeeding;
  /** Called once the store is verified again after a change: consumers ask where to resume. */
  readonly onResync: () => void;
  /** Called when the store can never be used by this deployment (wrong prefix or secret, evicting Redis). */
  readonly onFatal: (err: AssuranceError) => void;
  readonly checkIntervalMs: number;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
}

type GuardState = 'verifying' | 'ready' | 'failed';

export class StoreGuard implements BatchGuard {
  readonly #d: StoreGuardDeps;
  #state: GuardState = 'verifying';
  #generation = 0;
  #epoch = 0;
  #verifying: Promise<void> | undefined;
  /** The servers the store was last verified on (every primary of a cluster). */
  #seal: Seal | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #started = false;
  readonly #onReady = () => {
    // A reconnect may be to a Redis that restarted without its last writes, or to a replica that
    // took over behind: verify before anything else is decided.
    if (!this.#started || this.#stopped) return;
    this.#generation++;
    this.#state = 'verifying';
    this.#reverify('redis reconnected');
  };
  #ready: Promise<void>;
  #markReady: () => void = () => {};

  constructor(deps: StoreGuardDeps) {
    this.#d = deps;
    // Every series exists from the start, so a dashboard sees 0, not nothing, until the first event.
    for (const result of ['ok', 'verified', 'changed', 'unreachable'])
      deps.metrics.storeChecks.inc({ result }, 0);
    for (const kind of ['replay', 'gap', 'lost']) deps.metrics.storeRecoveries.inc({ kind }, 0);
    this.#ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
  }

  get epoch(): number {
    return this.#epoch;
  }

  get state(): GuardState {
    return this.#state;
  }

  /** Verifies the store once (start fails if it cannot be used), then keeps watching it. */
  async start(): Promise<void> {
    await this.#verify();
    this.#started = true;
    this.#d.redis.on('ready', this.#onReady);
    const tick = () => {
      if (this.#stopped) return;
      void this.#check().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#d.checkIntervalMs);
      });
    };
    this.#timer = setTimeout(tick, this.#d.checkIntervalMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#d.redis.off('ready', this.#onReady);
  }

  hold(): AssuranceError | undefined {
    if (this.#state === 'ready') return undefined;
    return new AssuranceError(
      'store_lost',
      `the store is ${this.#state === 'failed' ? 'unusable' : 'being verified'}`,
    );
  }

  begin(): Pass {
    return { generation: this.#generation, epoch: this.#epoch };
  }

  async verify(pass: Pass): Promise<AssuranceError | undefined> {
    const held = this.hold();
    if (held) return held;
    const epoch = await this.#d.meta.epoch();
    if (epoch === null) {
      this.#lost('the fingerprint is gone: the store was reset or lost');
      return new AssuranceError('store_lost', 'the store fingerprint vanished during the batch');
    }
    if (epoch !== pass.epoch || this.#generation !== pass.generation) {
      if (epoch !== this.#epoch) this.#lost(`the epoch moved from ${this.#epoch} to ${epoch}`);
      return new AssuranceError('store_lost', 'the store moved to another epoch during the batch');
    }
    return undefined;
  }

  /**
   * Where a stage's assigned partitions must resume: those whose progress in Redis is behind the
   * offset committed to Kafka, from where Redis stopped (the first retained offset when Redis has
   * nothing). Marks them for recovery and moves the store to a new epoch.
   */
  async resumeFrom(
    stage: string,
    assigned: ReadonlyArray<{ topic: string; partitions: number[] }>,
  ): Promise<Array<{ topic: string; partition: number; offset: string }>> {
    await this.#ready;
    const group = this.#d.stages.find((s) => s.stage === stage);
    if (!group) return [];
    const wanted = new Set(assigned.flatMap((a) => a.partitions.map((p) => `${a.topic}|${p}`)));
    const behind = (await this.#behind([group])).filter((b) => wanted.has(`${b.topic}|${b.partition}`));
    if (behind.length > 0) await this.#recover(behind, 'partitions assigned behind their committed offsets');
    return behind.map((b) => ({ topic: b.topic, partition: b.partition, offset: b.resumeAt }));
  }

  /** Something outside the guard saw the store change (a progress write refused: meta.ts, seal). */
  changed(why: string): void {
    this.#lost(why);
  }

  #lost(why: string): void {
    if (this.#state !== 'ready') return;
    this.#generation++;
    this.#state = 'verifying';
    this.#reverify(why);
  }

  #reverify(why: string): void {
    this.#d.logger.warn({ why }, 'store changed: holding batches until it is verified');
    this.#d.metrics.storeChecks.inc({ result: 'changed' });
    void this.#verify()
      .then(() => this.#d.onResync())
      .catch(() => {});
  }

  async #check(): Promise<void> {
    if (this.#state !== 'ready') return;
    try {
      const epoch = await this.#d.meta.epoch();
      if (epoch === null) this.#lost('the fingerprint is gone: the store was reset or lost');
      else if (epoch !== this.#epoch) this.#lost(`the epoch moved from ${this.#epoch} to ${epoch}`);
      // A cluster's primary that restarted or failed over says nothing to the connection as a
      // whole: its run id is how it shows (a single server's restart also shows as a reconnect).
      else if (this.#seal && !(await this.#d.meta.sealHolds(this.#seal)))
        this.#lost('a Redis server restarted or failed over since the store was verified');
      else this.#d.metrics.storeChecks.inc({ result: 'ok' });
    } catch {
      // Redis away: the reconnect will trigger a verification.
      this.#d.metrics.storeChecks.inc({ result: 'unreachable' });
    }
  }

  /** One verification at a time; retried until it succeeds or finds the store unusable. */
  #verify(): Promise<void> {
    this.#verifying ??= (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#verifyOnce();
          return;
        } catch (err) {
          const e =
            err instanceof AssuranceError ? err : new AssuranceError('store_lost', (err as Error).message);
          if (e.code === 'store_mismatch' || e.code === 'state_corrupt') {
            this.#state = 'failed';
            this.#d.onFatal(e);
            throw e;
          }
          if (this.#stopped) throw e;
          // A first failure is usually the broker settling (a partition leader just elected for a
          // new topic): worth a warning only when it persists. Batches stay held either way.
          this.#d.logger[attempt === 1 ? 'info' : 'warn'](
            { code: e.code, err: e.message, attempt },
            'store verification failed; retrying',
          );
          await new Promise((r) => setTimeout(r, Math.min(1000 * attempt, 5000)));
        }
      }
    })().finally(() => {
      this.#verifying = undefined;
    });
    return this.#verifying;
  }

  async #verifyOnce(): Promise<void> {
    const { meta } = this.#d;
    const generation = this.#generation;
    const runId = await meta.runId();
    // Read before anything is checked: a server that changes during the verification then fails
    // the first progress write after it, and is verified again.
    const seal = await meta.seal();
    const eviction = await meta.evictionPolicy();
    if (eviction !== 'noeviction') {
      throw new AssuranceError(
        'store_mismatch',
        `Redis maxmemory-policy is ${eviction}: under memory pressure it may evict signals, which would silently relax requirements. Set maxmemory-policy noeviction (docs/state.md).`,
      );
    }
    let fp = await meta.fingerprint();
    if (!fp) {
      const epoch = await this.#d.recoverLost(async () => {
        const behind = await this.#behind(this.#d.stages);
        await this.#mark(behind);
        return behind.length;
      });
      fp = (await meta.fingerprint()) as Fingerprint | null;
      if (!fp) throw new AssuranceError('store_lost', 'the fingerprint vanished right after recovery');
      this.#d.logger.info({ epoch }, 'store ready');
    }
    this.#check_fingerprint(fp);
    if (fp.policy !== this.#d.policyDigest) {
      await meta.setPolicy(this.#d.policyDigest);
      this.#d.logger.info({ from: fp.policy, to: this.#d.policyDigest }, 'store now records this policy');
    }
    const behind = await this.#behind(this.#d.stages);
    if (behind.length > 0) await this.#recover(behind, 'progress in Redis behind Kafka');
    const epoch = await meta.epoch();
    if (epoch === null)
      throw new AssuranceError('store_lost', 'the fingerprint vanished during verification');
    if (generation !== this.#generation)
      throw new AssuranceError('store_lost', 'the store changed during verification');
    // Readers trust the store on this Redis process from now on (until it restarts).
    await meta.markVerified(runId);
    this.#seal = seal;
    meta.installSeal(seal);
    this.#epoch = epoch;
    this.#state = 'ready';
    this.#d.metrics.storeEpoch.set(epoch);
    this.#d.metrics.storeChecks.inc({ result: 'verified' });
    this.#markReady();
  }

  #check_fingerprint(fp: Fingerprint): void {
    if (fp.format !== STATE_FORMAT) {
      throw new AssuranceError(
        'store_mismatch',
        `the store holds state format ${fp.format}; this engine reads format ${STATE_FORMAT}. Run \`assurance rebuild\` to rebuild it from Kafka (docs/state.md, rebuild).`,
      );
    }
    if (fp.prefix !== this.#d.prefix) {
      throw new AssuranceError(
        'store_mismatch',
        `the fingerprint under this prefix names prefix "${fp.prefix}": the store was copied or renamed; check REDIS_PREFIX`,
      );
    }
    if (fp.secret !== this.#d.secretDigest) {
      throw new AssuranceError(
        'store_mismatch',
        'CHANNEL_HASH_SECRET differs from the one this store was built with: every channel would be a stranger to its state. Restore the secret, or rebuild the store from Kafka (docs/state.md, fingerprint).',
      );
    }
  }

  /** Partitions whose Redis progress is behind the offset their group committed to Kafka. */
  async #behind(groups: readonly StageGroup[]): Promise<
    Array<{
      stage: string;
      topic: string;
      partition: number;
      committed: string;
      resumeAt: string;
      gap: boolean;
    }>
  > {
    // Offsets the consumers recorded in the store before now but have not committed yet go out
    // first: compared before they land, Kafka would look behind a store that lost them, and the
    // loss would pass unseen until they landed.
    await this.#d.flushCommits?.();
    // Kafka first, then Redis: other engines go on recording progress and then committing, so
    // progress read after the offsets is at least what they committed unless Redis lost it; read
    // the other way round, a commit landing in between would look like a loss.
    const positions = [];
    for (const g of groups) positions.push({ g, at: await this.#d.admin.positions(g.groupId, g.topics) });
    const progress = new Map<string, bigint>();
    for (const p of await this.#d.meta.progress()) {
      progress.set(`${p.stage}|${p.topic}|${p.partition}`, BigInt(p.nextOffset));
    }
    const out = [];
    for (const { g, at } of positions) {
      for (const pos of at) {
        if (pos.stored === null) continue;
        const recorded = progress.get(`${g.stage}|${pos.topic}|${pos.partition}`);
        if (recorded !== undefined && recorded >= pos.stored) continue;
        // A copy that lacks a partition the others know (-1, meta.ts progress): its server lost it,
        // since Kafka committed only after every copy was written. Replay from the start of the log,
        // and seed only if the log no longer starts at the beginning.
        const lostCopy = recorded === -1n;
        // Where Redis stopped, or the start of the log when it has nothing; if the log no longer
        // holds where Redis stopped, what came between is gone (a gap the decisions topic covers).
        const from = lostCopy ? pos.low : (recorded ?? pos.low);
        const resumeAt = from < pos.low ? pos.low : from;
        if (resumeAt >= pos.stored) continue;
        out.push({
          stage: g.stage,
          topic: pos.topic,
          partition: pos.partition,
          committed: pos.stored.toString(),
          resumeAt: resumeAt.toString(),
          gap: lostCopy ? pos.low > 0n : recorded !== undefined && recorded < pos.low,
        });
      }
    }
    return out;
  }

  /**
   * Records replay targets (keeping the further one of an earlier target); returns those that were
   * not known yet.
   */
  async #mark(
    behind: ReadonlyArray<{ stage: string; topic: string; partition: number; committed: string }>,
  ): Promise<typeof behind> {
    const known = new Map<string, bigint>();
    for (const r of await this.#d.meta.recovery())
      known.set(`${r.stage}|${r.topic}|${r.partition}`, BigInt(r.offset));
    const fresh = behind.filter((b) => {
      const k = known.get(`${b.stage}|${b.topic}|${b.partition}`);
      return k === undefined || BigInt(b.committed) > k;
    });
    await this.#d.meta.markRecovery(
      fresh.map((b) => ({ stage: b.stage, topic: b.topic, partition: b.partition, offset: b.committed })),
    );
    return fresh;
  }

  async #recover(
    behind: ReadonlyArray<{
      stage: string;
      topic: string;
      partition: number;
      committed: string;
      gap: boolean;
    }>,
    why: string,
  ): Promise<void> {
    // Partitions already being replayed are not news: only a loss found now moves the epoch (two
    // engines re-verifying each other's bumps would otherwise never stop).
    const fresh = await this.#mark(behind);
    if (fresh.length === 0) return;
    if (behind.some((b) => b.gap)) await this.#d.seed();
    const epoch = await this.#d.meta.bumpEpoch(this.#epoch + 1);
    if (epoch === null) throw new AssuranceError('store_lost', 'the fingerprint vanished while recovering');
    this.#epoch = epoch;
    this.#d.metrics.storeEpoch.set(epoch);
    this.#d.metrics.storeRecoveries.inc({ kind: behind.some((b) => b.gap) ? 'gap' : 'replay' });
    this.#d.logger.error(
      { why, partitions: fresh.length, epoch, gaps: behind.filter((b) => b.gap).length },
      'the store lost data: replaying the partitions concerned from where it stopped, under a new epoch',
    );
  }
}
