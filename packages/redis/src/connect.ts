import { Cluster, Redis } from 'ioredis';
import { defineScripts } from './scripts.ts';

/**
 * A connection to the store's Redis, made by `createRedis` or `createRedisCluster` (callers never
 * construct ioredis): one server, or a Redis Cluster, on which every script touches one slot
 * (keys.ts hash-tags every key).
 */
export type RedisConnection = Redis | Cluster;

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

/**
 * A Redis Cluster client over `nodes` (`host:port,...`, any of its nodes), with the store's scripts
 * defined. MOVED and ASK redirections are followed by ioredis; a command sent during a failover is
 * retried until the cluster is whole again (`retryDelayOnClusterDown`), never answered from a guess.
 */
export function createRedisCluster(
  nodes: string,
  profile: RedisProfile,
  options: { natMap?: string | undefined } = {},
): Cluster {
  const startup = nodes.split(',').map(hostPort);
  const cluster = new Cluster(startup, {
    lazyConnect: true,
    ...(options.natMap ? { natMap: parseNatMap(options.natMap) } : {}),
    enableAutoPipelining: profile.kind !== 'tool',
    retryDelayOnClusterDown: 200,
    retryDelayOnFailover: 200,
    // The API answers at once or fails closed: a command must never wait in a queue for a node
    // that is cut off (the cluster's queue has no timeout; the command timeout starts only once a
    // node has the command), as with one server.
    ...(profile.kind === 'api' ? { enableOfflineQueue: false } : {}),
    redisOptions: {
      connectTimeout: 3000,
      maxRetriesPerRequest: 1,
      ...(profile.kind === 'api'
        ? { commandTimeout: profile.commandTimeoutMs, enableOfflineQueue: false }
        : {}),
    },
  });
  defineScripts(cluster);
  return cluster;
}

function hostPort(text: string): { host: string; port: number } {
  const [host = '', port = ''] = text.trim().split(':');
  if (!host || !/^\d+$/.test(port)) throw new Error(`not a host:port: "${text}"`);
  return { host, port: Number(port) };
}

/**
 * `announced=reachable,...` as ioredis's natMap: the cluster's topology names its nodes by the
 * addresses they announce, which a process behind a NAT or a proxy must translate. A node missing
 * from the map is reached at its announced address.
 */
export function parseNatMap(text: string): Record<string, { host: string; port: number }> {
  const map: Record<string, { host: string; port: number }> = {};
  for (const pair of text.split(',')) {
    const [from = '', to = '', ...rest] = pair.split('=');
    if (rest.length > 0) throw new Error(`not an announced=reachable pair: "${pair}"`);
    const announced = hostPort(from);
    map[`${announced.host}:${announced.port}`] = hostPort(to);
  }
  return map;
}

/** Where the store is, as the environment says (core's checkRedisTarget makes exactly one set). */
export interface RedisTarget {
  readonly REDIS_URL?: string | undefined;
  readonly REDIS_CLUSTER_NODES?: string | undefined;
  readonly REDIS_CLUSTER_NAT_MAP?: string | undefined;
}

/** The store's connection for a process's configuration: the cluster when one is named, else the server. */
export function openRedis(target: RedisTarget, profile: RedisProfile): RedisConnection {
  if (target.REDIS_CLUSTER_NODES)
    return createRedisCluster(target.REDIS_CLUSTER_NODES, profile, { natMap: target.REDIS_CLUSTER_NAT_MAP });
  if (!target.REDIS_URL) throw new Error('neither REDIS_URL nor REDIS_CLUSTER_NODES is set');
  return createRedis(target.REDIS_URL, profile);
}

/** Where a process's store is, for logs and banners (no credentials). */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.REDIS_CLUSTER_NODES) return `Redis Cluster ${target.REDIS_CLUSTER_NODES}`;
  try {
    const u = new URL(target.REDIS_URL ?? '');
    return `Redis ${u.host}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return 'Redis';
  }
}
