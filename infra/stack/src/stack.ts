import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KafkaCluster } from './kafka-cluster.ts';
import {
  kafkaClusterDown,
  kafkaClusterNodeHealthy,
  kafkaClusterNodes,
  kafkaClusterUp,
} from './kafka-cluster.ts';
import type { StackLayout } from './layout.ts';
import { resolveLayout } from './layout.ts';
import { StackProblem } from './problems.ts';
import type { RedisCluster } from './redis-cluster.ts';
import {
  redisClusterDown,
  redisClusterNodeHealthy,
  redisClusterNodes,
  redisClusterUp,
} from './redis-cluster.ts';
import type { LocalService, Log } from './services.ts';
import { registry, SERVICES, stopService } from './services.ts';
import { toxiproxyDown } from './toxiproxy.ts';

/** Where clients connect; the same three variables every service reads. */
export interface StackEndpoints {
  readonly KAFKA_BROKERS: string;
  readonly SCHEMA_REGISTRY_URL: string;
  readonly REDIS_URL: string;
}

interface StackState {
  readonly endpoints: StackEndpoints;
  readonly managed: Record<string, { pid: number; startedAt: string }>;
}

const ENV_OF: Record<LocalService['name'], keyof StackEndpoints> = {
  kafka: 'KAFKA_BROKERS',
  registry: 'SCHEMA_REGISTRY_URL',
  redis: 'REDIS_URL',
};

export interface UpResult {
  readonly endpoints: StackEndpoints;
  readonly services: ReadonlyArray<{
    name: string;
    where: string;
    state: 'external' | 'reused' | 'started';
    ms: number;
  }>;
}

/**
 * Starts whatever the environment does not already point at, reusing servers a previous `up` left
 * running. Services are independent (the registry stores schemas on disk, not in Kafka), so they
 * start in parallel; when some fail, every problem is reported at once (Java and redis-server both
 * missing is one round trip, not two), each only once.
 */
export async function stackUp(log: Log = () => {}, layout: StackLayout = resolveLayout()): Promise<UpResult> {
  mkdirSync(layout.dir, { recursive: true });
  const settled = await Promise.allSettled(
    SERVICES.map(async (s) => {
      const t0 = Date.now();
      const external =
        layout.env[ENV_OF[s.name]] ?? (s.name === 'redis' ? layout.env.REDIS_CLUSTER_NODES : undefined);
      if (external)
        return { name: s.name, where: external, state: 'external' as const, ms: 0, pid: undefined };
      const { pid, reused } = await s.ensure(layout, log);
      const ms = Date.now() - t0;
      log(`${s.name}: ${reused ? 'already running' : 'started'} (pid ${pid}, ${ms} ms)`);
      return {
        name: s.name,
        where: s.endpoint(layout),
        state: reused ? ('reused' as const) : ('started' as const),
        ms,
        pid,
      };
    }),
  );
  throwFailures(settled);
  const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const where = (name: string) => results.find((r) => r.name === name)?.where ?? '';
  const endpoints: StackEndpoints = {
    KAFKA_BROKERS: where('kafka'),
    SCHEMA_REGISTRY_URL: where('registry'),
    REDIS_URL: where('redis'),
  };
  const managed: StackState['managed'] = {};
  for (const r of results)
    if (r.pid !== undefined) managed[r.name] = { pid: r.pid, startedAt: new Date().toISOString() };
  writeState(layout, { endpoints, managed });
  return { endpoints, services: results.map(({ pid: _pid, ...rest }) => rest) };
}

/** Every problem among `settled` at once, each only once; anything that is not one is a bug, thrown as is. */
function throwFailures(settled: ReadonlyArray<PromiseSettledResult<unknown>>): void {
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const bug = failures.find((e) => !(e instanceof StackProblem));
  if (bug !== undefined) throw bug;
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    const messages = [...new Set(failures.map((e) => (e as StackProblem).message))];
    throw new StackProblem(messages.join('\n'));
  }
}

/** Where clients of the clusters connect. */
export interface ClusterEndpoints {
  readonly KAFKA_BROKERS: string;
  readonly SCHEMA_REGISTRY_URL: string;
  readonly REDIS_CLUSTER_NODES: string;
}

export interface ClusterUpResult {
  readonly endpoints: ClusterEndpoints;
  readonly kafka: KafkaCluster;
  readonly redis: RedisCluster;
  readonly registry: { where: string; state: 'external' | 'reused' | 'started' };
}

/**
 * `stack:up -- --cluster`: the three-node Kafka cluster and the six-node Redis Cluster, with the
 * single-node stack's registry (schemas do not care how many brokers there are), all started in
 * parallel. The single-node Kafka and Redis are left as they are, and so is stack.json: tests that
 * find the stack through it keep finding the single node. The endpoints go to `<STACK_DIR>/cluster.env`.
 */
export async function clusterUp(
  log: Log = () => {},
  layout: StackLayout = resolveLayout(),
): Promise<ClusterUpResult> {
  mkdirSync(layout.dir, { recursive: true });
  const timed = async <T>(name: string, start: () => Promise<T>) => {
    const t0 = Date.now();
    const r = await start();
    log(`${name}: ready (${Date.now() - t0} ms)`);
    return r;
  };
  const external = layout.env.SCHEMA_REGISTRY_URL;
  const settled = await Promise.allSettled([
    timed('kafka-cluster', () => kafkaClusterUp(layout, log)),
    timed('redis-cluster', () => redisClusterUp(layout, log)),
    external
      ? Promise.resolve({ where: external, state: 'external' as const })
      : timed('registry', () => registry.ensure(layout, log)).then(({ reused }) => ({
          where: registry.endpoint(layout),
          state: reused ? ('reused' as const) : ('started' as const),
        })),
  ] as const);
  throwFailures(settled);
  // Every one fulfilled, or throwFailures threw.
  const value = <T>(r: PromiseSettledResult<T>) => (r as PromiseFulfilledResult<T>).value;
  const [kafka, redis, reg] = [value(settled[0]), value(settled[1]), value(settled[2])];
  const endpoints: ClusterEndpoints = {
    KAFKA_BROKERS: kafka.brokers,
    SCHEMA_REGISTRY_URL: reg.where,
    REDIS_CLUSTER_NODES: redis.nodes,
  };
  writeFileSync(
    path.join(layout.dir, 'cluster.env'),
    `# Written by npm run stack:up -- --cluster; source it to reach the clusters.\n${Object.entries(endpoints)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
  return { endpoints, kafka, redis, registry: reg };
}

function writeState(layout: StackLayout, state: StackState): void {
  writeFileSync(layout.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  const env = Object.entries(state.endpoints)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  writeFileSync(
    path.join(layout.dir, 'env'),
    `# Written by npm run stack:up; source it to reach the local stack.\n${env}\n`,
  );
}

/** Stops only the servers that `stackUp` started from this stack folder, newest dependants first. */
export async function stackDown(log: Log = () => {}, layout: StackLayout = resolveLayout()): Promise<void> {
  for (const s of [...SERVICES].reverse()) {
    const stopped = await stopService(s, layout);
    log(`${s.name}: ${stopped ? 'stopped' : 'not running'}`);
  }
  await clusterDown(log, layout);
}

/**
 * Stops the Kafka cluster and the Redis Cluster (`stack:up -- --cluster`, `npm run test:cluster`)
 * started from this folder, if any, and the network fault run's toxiproxy, and nothing else: the
 * registry they share with the single-node stack stays.
 */
export async function clusterDown(log: Log = () => {}, layout: StackLayout = resolveLayout()): Promise<void> {
  const [kafkaNodes, redisNodes, proxy] = await Promise.all([
    kafkaClusterDown(layout),
    redisClusterDown(layout),
    toxiproxyDown(layout),
  ]);
  if (kafkaNodes > 0) log(`kafka-cluster: stopped ${kafkaNodes} node(s)`);
  if (redisNodes > 0) log(`redis-cluster: stopped ${redisNodes} node(s)`);
  if (proxy) log('toxiproxy: stopped');
}

export interface ServiceStatus {
  readonly name: string;
  readonly where: string;
  readonly managed: boolean;
  readonly pid: number | undefined;
  readonly healthy: boolean;
}

/**
 * The three services, then each node of the Kafka cluster (`kafka-<id>`) and of the Redis Cluster
 * (`redis-<port>`) when any node of that cluster runs: then all of its nodes, so that a dead one
 * shows as down.
 */
export async function stackStatus(layout: StackLayout = resolveLayout()): Promise<ServiceStatus[]> {
  const { livePid } = await import('./proc.ts');
  const node = async (
    name: string,
    where: string,
    pid: number | undefined,
    probe: () => Promise<boolean>,
  ) => ({
    name,
    where,
    managed: true,
    pid,
    healthy: pid !== undefined && (await probe().catch(() => false)),
  });
  const kafkaNodes = kafkaClusterNodes(layout);
  const redisNodes = redisClusterNodes(layout);
  return Promise.all([
    ...SERVICES.map(async (s) => {
      const external = layout.env[ENV_OF[s.name]];
      if (external) return { name: s.name, where: external, managed: false, pid: undefined, healthy: true };
      const pid = livePid(s.pidFile(layout), s.marker(layout));
      const healthy = pid !== undefined && (await s.healthy(layout).catch(() => false));
      return { name: s.name, where: s.endpoint(layout), managed: true, pid, healthy };
    }),
    ...(kafkaNodes.some((n) => n.pid !== undefined)
      ? kafkaNodes.map((n) =>
          node(`kafka-${n.id}`, `127.0.0.1:${n.port}`, n.pid, () => kafkaClusterNodeHealthy(n.port)),
        )
      : []),
    ...(redisNodes.some((n) => n.pid !== undefined)
      ? redisNodes.map((n) =>
          node(`redis-${n.port}`, `127.0.0.1:${n.port}`, n.pid, () => redisClusterNodeHealthy(n.port)),
        )
      : []),
  ]);
}

/** Endpoints recorded by the last `up`, if any. */
export function readEndpoints(layout: StackLayout = resolveLayout()): StackEndpoints | undefined {
  try {
    return (JSON.parse(readFileSync(layout.stateFile, 'utf8')) as StackState).endpoints;
  } catch {
    return undefined;
  }
}
