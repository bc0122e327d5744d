import type { RedisConnection } from './connect.ts';
import type { KeySpace } from './keys.ts';

/**
 * Our Shared Signals transmitter's state in Redis: the streams receivers created, what was last
 * transmitted per identity (so a decision read again sends nothing twice), and one outbox per
 * stream, which poll requests read and push workers drain. A SET leaves its outbox only when the
 * receiver acknowledged it, answered it with an error, or it was dead-lettered.
 */
export interface StoredStream {
  readonly stream_id: string;
  /** The API token (receiver) that owns it: one stream per receiver. */
  readonly receiver: string;
  readonly aud: string;
  readonly delivery: {
    readonly method: string;
    readonly endpoint_url?: string | undefined;
    readonly authorization_header?: string | undefined;
  };
  readonly events_requested: readonly string[];
  readonly events_delivered: readonly string[];
  readonly description?: string;
  readonly status: 'enabled' | 'paused' | 'disabled';
  readonly reason?: string;
  /** Subjects the receiver removed (their `iss_sub` sub): nothing is sent about them. */
  readonly removed: readonly string[];
  readonly createdAt: number;
}

const LAST_SENT_TTL_S = 400 * 86_400;

export class SsfTransmitStore {
  readonly #redis: RedisConnection;
  readonly #keys: KeySpace;

  constructor(redis: RedisConnection, keys: KeySpace) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async streams(): Promise<StoredStream[]> {
    const all = await this.#redis.hgetall(this.#keys.ssfStreams);
    return Object.values(all).map((v) => JSON.parse(v) as StoredStream);
  }

  async stream(id: string): Promise<StoredStream | undefined> {
    const v = await this.#redis.hget(this.#keys.ssfStreams, id);
    return v === null ? undefined : (JSON.parse(v) as StoredStream);
  }

  async saveStream(s: StoredStream): Promise<void> {
    await this.#redis.hset(this.#keys.ssfStreams, s.stream_id, JSON.stringify(s));
  }

  async deleteStream(id: string): Promise<void> {
    const o = this.#keys.ssfOutbox(id);
    await this.#redis.hdel(this.#keys.ssfStreams, id);
    await this.#redis.del(o.sets, o.due, o.tries);
  }

  async lastSent<T>(identityId: string): Promise<T | undefined> {
    const v = await this.#redis.get(this.#keys.ssfLastSent(identityId));
    return v === null ? undefined : (JSON.parse(v) as T);
  }

  async setLastSent(identityId: string, state: unknown): Promise<void> {
    await this.#redis.set(this.#keys.ssfLastSent(identityId), JSON.stringify(state), 'EX', LAST_SENT_TTL_S);
  }

  /** Adds a SET to a stream's outbox, due at `at`; the same jti again changes nothing. */
  async enqueue(streamId: string, jti: string, token: string, at: number): Promise<void> {
    const o = this.#keys.ssfOutbox(streamId);
    await this.#redis.multi().hsetnx(o.sets, jti, token).zadd(o.due, 'NX', at, jti).exec();
  }

  /** The oldest `max` SETs waiting (poll delivery), and whether more wait. */
  async peek(
    streamId: string,
    max: number,
  ): Promise<{ sets: Array<{ jti: string; token: string }>; more: boolean }> {
    const o = this.#keys.ssfOutbox(streamId);
    const jtis = await this.#redis.zrange(o.due, 0, max);
    const more = jtis.length > max;
    const mine = jtis.slice(0, max);
    if (mine.length === 0) return { sets: [], more: false };
    const tokens = await this.#redis.hmget(o.sets, ...mine);
    const sets = mine.flatMap((jti, i) => (tokens[i] ? [{ jti, token: tokens[i] as string }] : []));
    return { sets, more };
  }

  /**
   * Claims up to `max` SETs due now for pushing: each is due again after `leaseMs`, so a worker
   * that dies leaves it to another (the receiver dedupes a SET sent twice by its jti).
   */
  async claim(
    streamId: string,
    now: number,
    leaseMs: number,
    max: number,
  ): Promise<Array<{ jti: string; token: string; tries: number }>> {
    const o = this.#keys.ssfOutbox(streamId);
    const jtis = await this.#redis.zrangebyscore(o.due, '-inf', now, 'LIMIT', 0, max);
    if (jtis.length === 0) return [];
    const m = this.#redis.multi();
    for (const jti of jtis) m.zadd(o.due, 'XX', now + leaseMs, jti).hincrby(o.tries, jti, 1);
    const r = (await m.exec()) ?? [];
    const tokens = await this.#redis.hmget(o.sets, ...jtis);
    return jtis.flatMap((jti, i) =>
      tokens[i] ? [{ jti, token: tokens[i] as string, tries: Number(r[2 * i + 1]?.[1] ?? 1) }] : [],
    );
  }

  /** Puts a SET back, due at `at` (a push that failed, retried after a backoff). */
  async retryAt(streamId: string, jti: string, at: number): Promise<void> {
    await this.#redis.zadd(this.#keys.ssfOutbox(streamId).due, 'XX', at, jti);
  }

  /** Removes SETs from the outbox: acknowledged, refused by the receiver, or dead-lettered. */
  async remove(streamId: string, jtis: readonly string[]): Promise<void> {
    if (jtis.length === 0) return;
    const o = this.#keys.ssfOutbox(streamId);
    await this.#redis
      .multi()
      .zrem(o.due, ...jtis)
      .hdel(o.sets, ...jtis)
      .hdel(o.tries, ...jtis)
      .exec();
  }

  async depth(streamId: string): Promise<number> {
    return this.#redis.zcard(this.#keys.ssfOutbox(streamId).due);
  }
}
