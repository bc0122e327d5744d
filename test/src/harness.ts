import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRedis, createRedisCluster, type RedisConnection } from '@assurance/redis';
import type { StackEndpoints } from '@assurance/stack';
import { REPO_ROOT, stackUp } from '@assurance/stack';

/**
 * Hands tests their endpoints, in this order:
 *  1. KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL when all are set (CI against a cluster,
 *     or the values `npm test` exported after starting the stack);
 *  2. testcontainers, when a container runtime answers (developers with Docker);
 *  3. the native local stack (infra/stack), started if needed.
 */
export async function endpoints(): Promise<StackEndpoints> {
  const { KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL } = process.env;
  if (KAFKA_BROKERS && SCHEMA_REGISTRY_URL && REDIS_URL)
    return { KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL };
  if (process.env.TEST_STACK !== 'native' && containerRuntimeReachable()) {
    const { startContainers } = await import('./containers.ts');
    return startContainers();
  }
  const { endpoints: e } = await stackUp((m) => process.stderr.write(`[stack] ${m}\n`));
  return e;
}

/** A Docker-compatible socket exists (testcontainers also honours DOCKER_HOST). */
function containerRuntimeReachable(): boolean {
  if (process.env.DOCKER_HOST) return true;
  return ['/var/run/docker.sock', `${process.env.HOME}/.docker/run/docker.sock`].some(
    (p) => p && existsSync(p),
  );
}

/** A short random suffix so parallel tests never share topics, groups or key prefixes. */
export function uniqueName(base: string): string {
  return `${base}-${randomBytes(4).toString('hex')}`;
}

/** A fresh Redis key prefix for one test. */
export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}:`;
}

/**
 * The store's Redis for tests that drive the scripts directly: the stack's one server, or the
 * Redis Cluster named by REDIS_CLUSTER_NODES (`npm run test:cluster`), where a script whose keys
 * span slots fails with CROSSSLOT.
 */
export async function storeRedis(): Promise<RedisConnection> {
  const nodes = process.env.REDIS_CLUSTER_NODES;
  const redis = nodes
    ? createRedisCluster(nodes, { kind: 'engine' })
    : createRedis((await endpoints()).REDIS_URL, { kind: 'engine' });
  await redis.connect();
  return redis;
}

/** The default policy's medium tier lists these first; the stricter candidate drops them. */
const MEDIUM_SMS_VOICE = '      [\n        sms_otp,\n        voice_otp,\n';

/**
 * A candidate stricter than the default policy (no SMS or voice codes for medium actions), written
 * as `dir/stricter.yaml` under `version`; its path. The shadow, what-if and console tests use it.
 */
export function writeStricterPolicy(dir: string, version: string): string {
  const live = readFileSync(path.join(REPO_ROOT, 'packages/policy/policies/default.yaml'), 'utf8');
  if (!live.includes(MEDIUM_SMS_VOICE))
    throw new Error('the default policy no longer lists sms_otp and voice_otp first for medium');
  const file = path.join(dir, 'stricter.yaml');
  writeFileSync(
    file,
    live.replace(/^version: .*$/m, `version: ${version}`).replace(MEDIUM_SMS_VOICE, '      [\n'),
  );
  return file;
}
