import { Redis } from 'ioredis';
import { defineScripts } from './scripts.ts';

/** A connection to the store's Redis, made by `createRedis` (callers never construct ioredis). */
export type RedisConnection = Redis;

/**
 * How a process uses Redis, and so how its connection behaves while Redis is away:
 * - `engine`: commands of concurrent batches share writes (auto-pipelining), and a command fails
 *   after one retry, so a batch fails and is redelivered instead of piling up behind an outage;
 * - `api`: the same sharing, no offline queue and a per-command timeout, so a slow or absent Redis
 *   answers fail-closed at once; it reconnects at most every second, so answers recover promptly;
 * - `tool`: a one-shot command line tool: fail fast.
 */
export type RedisProfile =
  | { readonly kind: 'engine' }
  | { readonly kind: 'api'; readonly commandTimeoutMs: number }
  | { readonly kind: 'tool' };

/** A lazily connecting client with the store's scripts defined; call `connect()` when ready. */
export function createRedis(url: string, profile: RedisProfile): RedisConnection {
  const common = { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 } as const;
  let redis: Redis;
  switch (profile.kind) {
    case 'engine':
      redis = new Redis(url, { ...common, enableAutoPipelining: true });
      break;
    case 'api':
      redis = new Redis(url, {
        ...common,
        enableAutoPipelining: true,
        enableOfflineQueue: false,
        commandTimeout: profile.commandTimeoutMs,
        retryStrategy: (attempt) => Math.min(attempt * 200, 1000),
      });
      break;
    case 'tool':
      redis = new Redis(url, common);
      break;
  }
  defineScripts(redis);
  return redis;
}
