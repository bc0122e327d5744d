import { createHmac } from 'node:crypto';
import { AssuranceError } from '@assurance/core';
import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { RedisConnection } from './connect.ts';
import { storeError } from './errors.ts';
import type { KeySpace } from './keys.ts';
import { commandName } from './scripts.ts';
import type { StoreStatus } from './store.ts';

/**
 * The store's fingerprint and the bookkeeping that lets engine and API tell a store that lost data
 * from one that is complete (docs/state.md, fingerprint and data loss).
 */

/** Written once, when a deployment first uses a store; the epoch moves on each data loss. */
export interface Fingerprint {
  readonly format: number;
  readonly prefix: string;
  /** A keyed digest of the channel secret: equal secrets give equal digests, and the digest reveals nothing. */
  readonly secret: string;
  /** The policy the engines decide with (the latest engine to start sets it). */
  readonly policy: string;
  readonly epoch: number;
  readonly createdAt: string;
  /** The Redis run id an engine last verified the store on; absent until one has. */
  readonly verified?: string;
}

export const STATE_FORMAT = 2;

/**
 * A decision's sequence: the store's epoch in the high bits, and below them the time of the
 * decision in ms, or one more than the identity's previous sequence when that is later (bursts).
 * The time part lets a sequence outrank everything published before without remembering it: an
 * identity forgotten after STATE_TTL and seen again, or one whose count a lost store forgot, still
 * gets sequences above its old ones. The epoch covers what time cannot: a store that lost data while
 * a clock stepped back. 2⁴² ms reach the year 2109, and 2¹¹ epochs keep sequences exact in a double.
 */
export const EPOCH_SHIFT = 2 ** 42;
export const MAX_EPOCH = 2 ** 11 - 1;

export function epochOf(sequence: number): number {
  return Math.floor(sequence / EPOCH_SHIFT);
}

/** The sequence of a new decision after `previous` (0: none known), made at `nowMs` in `epoch`. */
export function nextSequence(previous: number, epoch: number, nowMs: number): number {
  const base = epoch * EPOCH_SHIFT;
  const low = epochOf(previous) === epoch ? previous - base : 0;
  return base + Math.max(low + 1, Math.min(nowMs, EPOCH_SHIFT - 1));
}

/** The digest of a channel secret kept in the fingerprint: an HMAC of a fixed text, keyed by the secret. */
export function secretDigest(secret: string): string {
  return createHmac('sha256', secret).update('assurance fingerprint v1').digest('hex').slice(0, 16);
}

export interface ProgressEntry {
  readonly stage: string;
  readonly topic: string;
  readonly partition: number;
  readonly nextOffset: string;
}

const fieldOf = (e: { stage: string; topic: string; partition: number }) =>
  `${e.stage}|${e.topic}|${e.partition}`;

function parseField(field: string): { stage: string; topic: string; partition: number } {
  const [stage = '', topic = '', partition = '0'] = field.split('|');
  return { stage, topic, partition: Number(partition) };
}

function parseFingerprint(raw: Record<string, string>): Fingerprint | null {
  if (Object.keys(raw).length === 0) return null;
  const epoch = Number(raw.epoch);
  const format = Number(raw.format);
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(format) || raw.prefix === undefined) {
    throw new AssuranceError('state_corrupt', 'the store fingerprint is unreadable');
  }
  return {
    format,
    prefix: raw.prefix,
    secret: raw.secret ?? '',
    policy: raw.policy ?? '',
    epoch,
    createdAt: raw.createdAt ?? '',
    ...(raw.verified === undefined ? {} : { verified: raw.verified }),
  };
}

type ScriptCall = (...args: Array<string | number>) => Promise<unknown>;

/** One copy of the progress records, with the recovery targets beside it (keys.ts). */
export interface ProgressShard {
  readonly progress: string;
  readonly recovery: string;
}

/** Every progress copy with the run id of the server that held it when the store was verified. */
export type Seal = ReadonlyArray<ProgressShard & { readonly runId: string }>;

export class MetaStore {
  readonly #redis: RedisConnection;
  readonly #keys: KeySpace;
  #sealed: Seal | undefined;

  constructor(redis: RedisConnection, keys: KeySpace) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async #script(name: string, ...args: Array<string | number>): Promise<unknown> {
    const fn = (this.#redis as unknown as Record<string, ScriptCall | undefined>)[commandName(name)];
    if (!fn) throw new AssuranceError('script_failed', `Redis script ${name} is not defined on this client`);
    try {
      return await fn.call(this.#redis, ...args);
    } catch (err) {
      throw storeError(err, `script ${name}`);
    }
  }

  async #do<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw storeError(err, what);
    }
  }

  async fingerprint(): Promise<Fingerprint | null> {
    return parseFingerprint(
      await this.#do('read the fingerprint', () => this.#redis.hgetall(this.#keys.fingerprint)),
    );
  }

  /** The store's epoch alone (one field): what the pipeline checks around every batch. */
  async epoch(): Promise<number | null> {
    const v = await this.#do('read the epoch', () => this.#redis.hget(this.#keys.fingerprint, 'epoch'));
    return v === null ? null : Number(v);
  }

  /** Writes `fp` unless a fingerprint exists; returns the one in force and whether it was ours. */
  async initFingerprint(fp: Fingerprint): Promise<{ created: boolean; fingerprint: Fingerprint }> {
    const args = Object.entries(fp).flatMap(([k, v]) => [k, String(v)]);
    const r = (await this.#script('meta-init', this.#keys.fingerprint, ...args)) as Array<number | string>;
    const raw: Record<string, string> = {};
    for (let i = 1; i + 1 < r.length; i += 2) raw[String(r[i])] = String(r[i + 1]);
    const parsed = parseFingerprint(raw);
    if (!parsed)
      throw new AssuranceError('state_corrupt', 'the store fingerprint vanished while it was written');
    return { created: r[0] === 1, fingerprint: parsed };
  }

  /** A new epoch, at least `atLeast`; null when the fingerprint is gone (the whole store was lost). */
  async bumpEpoch(atLeast: number): Promise<number | null> {
    const r = Number(await this.#script('meta-epoch', this.#keys.fingerprint, atLeast));
    if (r > MAX_EPOCH)
      throw new AssuranceError('state_corrupt', `epoch ${r} is past the last one sequences can carry`);
    return r === -2 ? null : r;
  }

  /**
   * The id of the Redis process serving us: it changes when Redis restarts (and may have lost
   * writes). On a cluster, the ids of every primary together: a restart or a failover of any of
   * them changes it.
   */
  async runId(): Promise<string> {
    const ids = await Promise.all(
      primaries(this.#redis).map(async (server) => {
        const info = await this.#do('read server info', () => server.info('server'));
        const id = /^run_id:(\S+)/m.exec(info)?.[1];
        if (!id) throw new AssuranceError('redis_unavailable', 'Redis INFO names no run_id');
        return id;
      }),
    );
    return ids.sort().join('+');
  }

  /** Records that the store was verified complete on the Redis process `runId` (readers trust it until it restarts). */
  async markVerified(runId: string): Promise<void> {
    await this.#do('record verification', () => this.#redis.hset(this.#keys.fingerprint, 'verified', runId));
  }

  async setPolicy(digest: string): Promise<void> {
    await this.#do('record the policy', () => this.#redis.hset(this.#keys.fingerprint, 'policy', digest));
  }

  /**
   * Where each stage has got to (the next offset it will process), written before the offsets are
   * committed to Kafka: Kafka can then be ahead of Redis only if Redis lost writes, which is how the
   * engine notices. On a cluster it is written to every primary (`progressShards`), each copy only
   * while that primary is the process the store was verified on (`seal`): a primary that restarted
   * or failed over refuses, and the batch fails with `store_lost` instead of committing past the
   * writes it may have lost. Returns how many recovery targets are left.
   */
  async recordProgress(entries: readonly ProgressEntry[], atMs: number): Promise<number> {
    if (entries.length === 0) return 0;
    const args = entries.flatMap((e) => [fieldOf(e), e.nextOffset]);
    const shards = this.#sealed ?? this.progressShards().map((s) => ({ ...s, runId: '' }));
    const left = await Promise.all(
      shards.map((s) => this.#script('progress-record', s.progress, s.recovery, s.runId, atMs, ...args)),
    );
    if (left.some((n) => Number(n) === -1)) {
      throw new AssuranceError(
        'store_lost',
        'a Redis server restarted or failed over since the store was verified: it may have lost writes',
      );
    }
    // The recovery targets live beside the first copy (`{ops}`); the other copies have none.
    return Number(left[0]);
  }

  /**
   * The copies of progress: `{ops}:progress`, and on a cluster one more on every primary that does
   * not own `{ops}`'s slot, tagged `{ops:<n>}` with the smallest n that lands on it. A primary that
   * loses writes then loses its copy's latest progress with them (one server replicates and persists
   * in order), and `progress()` reads the oldest copy. Engines that see the same slot map choose the
   * same tags.
   */
  progressShards(): ProgressShard[] {
    const first = { progress: this.#keys.progress, recovery: this.#keys.recovery };
    if (!(this.#redis instanceof Cluster)) return [first];
    const slots = this.#redis.slots;
    const owners = new Set<string>();
    for (const s of slots) if (s?.[0]) owners.add(s[0]);
    const owner = (key: string) => slots[calculateSlot(key)]?.[0];
    const covered = new Set<string>();
    const firstOwner = owner(first.progress);
    if (firstOwner !== undefined) covered.add(firstOwner);
    const out = [first];
    for (let n = 0; covered.size < owners.size && n < 16_384; n++) {
      const shard = this.#keys.progressShard(n);
      const o = owner(shard.progress);
      if (o === undefined || covered.has(o)) continue;
      covered.add(o);
      out.push(shard);
    }
    return out;
  }

  /**
   * The run id of the server holding each progress copy, read at the start of a verification and
   * installed (`installSeal`) once the store is verified: from then on a copy is written only while
   * its server is still that process.
   */
  async seal(): Promise<Seal> {
    return Promise.all(
      this.progressShards().map(async (s) => ({
        ...s,
        runId: String(await this.#script('server-id', s.progress)),
      })),
    );
  }

  installSeal(seal: Seal | undefined): void {
    this.#sealed = seal;
  }

  /** Whether every progress copy is still where and on what process `seal` found it. */
  async sealHolds(seal: Seal): Promise<boolean> {
    const now = await this.seal();
    return (
      now.length === seal.length &&
      now.every((s, i) => s.progress === seal[i]?.progress && s.runId === seal[i]?.runId)
    );
  }

  /**
   * Where each stage has got to, as the oldest progress copy says: a partition a copy does not know
   * while another does, or every partition when a copy is gone while others exist, reads as offset
   * -1. That is a loss only for a partition Kafka holds a committed offset for (offsets are
   * committed after every copy is written); for one never committed, it is a first write still
   * reaching the copies (store-guard.ts reads it so).
   */
  async progress(): Promise<Array<ProgressEntry & { atMs: number }>> {
    const copies = await Promise.all(
      this.progressShards().map((s) => this.#do('read progress', () => this.#redis.hgetall(s.progress))),
    );
    const fields = new Set(copies.flatMap((c) => Object.keys(c)));
    return [...fields].map((field) => {
      let oldest: { nextOffset: string; atMs: number } | undefined;
      for (const c of copies) {
        const [nextOffset = '-1', atMs = '0'] = (c[field] ?? '-1|0').split('|');
        if (oldest === undefined || BigInt(nextOffset) < BigInt(oldest.nextOffset))
          oldest = { nextOffset, atMs: Number(atMs) };
      }
      return { ...parseField(field), nextOffset: oldest?.nextOffset ?? '-1', atMs: oldest?.atMs ?? 0 };
    });
  }

  /** Partitions that must be replayed up to an offset before the store is complete again. */
  async markRecovery(
    targets: ReadonlyArray<{ stage: string; topic: string; partition: number; offset: string }>,
  ): Promise<void> {
    if (targets.length === 0) return;
    await this.#do('mark recovery', () =>
      this.#redis.hset(this.#keys.recovery, ...targets.flatMap((t) => [fieldOf(t), t.offset])),
    );
  }

  async recovery(): Promise<Array<{ stage: string; topic: string; partition: number; offset: string }>> {
    const raw = await this.#do('read recovery', () => this.#redis.hgetall(this.#keys.recovery));
    return Object.entries(raw).map(([field, offset]) => ({ ...parseField(field), offset }));
  }

  /** The store's status as a reader sees it (store.ts readWithStatus, without an identity). */
  async status(): Promise<StoreStatus> {
    const fp = await this.fingerprint();
    const recovering = await this.recoveryPending();
    return {
      epoch: fp?.epoch ?? null,
      policy: fp?.policy ?? null,
      verifiedRunId: fp?.verified ?? null,
      format: fp?.format ?? null,
      recovering,
    };
  }

  /** How many partitions are still being replayed after a data loss (0: complete). */
  async recoveryPending(): Promise<number> {
    return this.#do('count recovery', () => this.#redis.hlen(this.#keys.recovery));
  }

  /**
   * Takes the lock under which one engine recovers a store that was lost as a whole; renew it with
   * the same token while working.
   */
  async lockRecovery(token: string, ttlMs: number): Promise<boolean> {
    const r = await this.#do('lock recovery', () =>
      this.#redis.set(this.#keys.recoveryLock, token, 'PX', ttlMs, 'NX'),
    );
    if (r === 'OK') return true;
    const holder = await this.#do('read recovery lock', () => this.#redis.get(this.#keys.recoveryLock));
    if (holder !== token) return false;
    await this.#do('renew recovery lock', () => this.#redis.pexpire(this.#keys.recoveryLock, ttlMs));
    return true;
  }

  async unlockRecovery(token: string): Promise<void> {
    const holder = await this.#do('read recovery lock', () => this.#redis.get(this.#keys.recoveryLock));
    if (holder === token) await this.#do('unlock recovery', () => this.#redis.del(this.#keys.recoveryLock));
  }

  /**
   * Redis's eviction policy. Only `noeviction` is safe: every state key has an expiry, so a
   * `volatile-*` policy may evict it under memory pressure as surely as an `allkeys-*` one, and an
   * evicted signal is a requirement silently relaxed.
   */
  async evictionPolicy(): Promise<string> {
    // On a cluster, the first primary that could evict speaks for all: one is enough to lose a signal.
    const policies = await Promise.all(
      primaries(this.#redis).map(async (server) => {
        const info = await this.#do('read memory info', () => server.info('memory'));
        return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown';
      }),
    );
    return policies.find((p) => p !== 'noeviction') ?? 'noeviction';
  }

  /** Deletes every key under the prefix (rebuild): the engines then recover the store from Kafka. */
  async wipe(): Promise<number> {
    let n = 0;
    for (const server of primaries(this.#redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await this.#do('scan keys', () =>
          server.scan(cursor, 'MATCH', `${globEscape(this.#keys.prefix)}*`, 'COUNT', 1000),
        );
        cursor = next;
        // One key per call on a cluster: a scan page spans slots, and UNLINK takes keys of one.
        const unlink = (ks: string[]) => this.#do('delete keys', () => server.unlink(...ks));
        if (this.#redis instanceof Cluster) for (const k of keys) n += await unlink([k]);
        else if (keys.length > 0) n += await unlink(keys);
      } while (cursor !== '0');
    }
    return n;
  }
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** The servers holding the data: the one server, or every primary of a cluster. */
function primaries(redis: RedisConnection): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}
