import type { RedisConnection } from './connect.ts';
import type { KeySpace } from './keys.ts';

/**
 * What the API replicas know together of each Shared Signals transmitter's stream: its status as
 * last read or announced, when it last proved itself by echoing a verification state, and the
 * states asked for and not yet echoed. Plain commands, each on one key of the transmitter's slot.
 * A hash that is gone (a Redis that lost data) reads as nothing known, which the API treats as
 * unhealthy: never as a healthy stream.
 */
export interface SourceHealthRecord {
  /** `enabled`, `paused` or `disabled`; undefined when never read. */
  readonly status: string | undefined;
  readonly reason: string | undefined;
  /** When the status was last read or announced (ms). */
  readonly statusAt: number | undefined;
  /** When a verification state we asked for last came back (ms). */
  readonly verifiedAt: number | undefined;
  /** When a verification SET last came back with a state we never asked for, or an expired one (ms). */
  readonly verificationFailedAt: number | undefined;
}

const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));

export class SourceHealthStore {
  readonly #redis: RedisConnection;
  readonly #keys: KeySpace;

  constructor(redis: RedisConnection, keys: KeySpace) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async read(name: string): Promise<SourceHealthRecord> {
    const h = await this.#redis.hgetall(this.#keys.sourceHealth(name).health);
    return {
      status: h.status,
      reason: h.reason,
      statusAt: num(h.statusAt),
      verifiedAt: num(h.verifiedAt),
      verificationFailedAt: num(h.verificationFailedAt),
    };
  }

  async setStatus(name: string, status: string, reason: string | undefined, at: number): Promise<void> {
    await this.#redis.hset(this.#keys.sourceHealth(name).health, {
      status,
      reason: reason ?? '',
      statusAt: String(at),
    });
  }

  /** Records a state we asked the transmitter to echo, valid for `ttlMs`. */
  async expectState(name: string, state: string, ttlMs: number): Promise<void> {
    await this.#redis.set(this.#keys.sourceHealth(name).state(state), '1', 'PX', ttlMs);
  }

  /**
   * A verification SET came back with `state`: true, and the stream verified, when it is one we
   * asked for and still waiting (used once); false, and the failure recorded, otherwise.
   */
  async verified(name: string, state: string, at: number): Promise<boolean> {
    const keys = this.#keys.sourceHealth(name);
    const was = await this.#redis.getdel(keys.state(state));
    await this.#redis.hset(
      keys.health,
      was === null ? { verificationFailedAt: String(at) } : { verifiedAt: String(at) },
    );
    return was !== null;
  }

  /** Whether this replica may ask for a verification now (one asks per `ttlMs`, whichever first). */
  async mayAsk(name: string, ttlMs: number): Promise<boolean> {
    return (await this.#redis.set(this.#keys.sourceHealth(name).asking, '1', 'PX', ttlMs, 'NX')) === 'OK';
  }
}
