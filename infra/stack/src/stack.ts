import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StackLayout } from './layout.ts';
import { resolveLayout } from './layout.ts';
import { StackProblem } from './problems.ts';
import { redisClusterDown } from './redis-cluster.ts';
import type { LocalService, Log } from './services.ts';
import { SERVICES, stopService } from './services.ts';

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
      const external = layout.env[ENV_OF[s.name]];
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
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const bug = failures.find((e) => !(e instanceof StackProblem));
  if (bug !== undefined) throw bug;
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    const messages = [...new Set(failures.map((e) => (e as StackProblem).message))];
    throw new StackProblem(messages.join('\n'));
  }
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
  // The Redis Cluster `npm run test:cluster` started from this folder, if any.
  const nodes = await redisClusterDown(layout);
  if (nodes > 0) log(`redis-cluster: stopped ${nodes} node(s)`);
}

export interface ServiceStatus {
  readonly name: string;
  readonly where: string;
  readonly managed: boolean;
  readonly pid: number | undefined;
  readonly healthy: boolean;
}

export async function stackStatus(layout: StackLayout = resolveLayout()): Promise<ServiceStatus[]> {
  const { livePid } = await import('./proc.ts');
  return Promise.all(
    SERVICES.map(async (s) => {
      const external = layout.env[ENV_OF[s.name]];
      if (external) return { name: s.name, where: external, managed: false, pid: undefined, healthy: true };
      const pid = livePid(s.pidFile(layout), s.marker(layout));
      const healthy = pid !== undefined && (await s.healthy(layout).catch(() => false));
      return { name: s.name, where: s.endpoint(layout), managed: true, pid, healthy };
    }),
  );
}

/** Endpoints recorded by the last `up`, if any. */
export function readEndpoints(layout: StackLayout = resolveLayout()): StackEndpoints | undefined {
  try {
    return (JSON.parse(readFileSync(layout.stateFile, 'utf8')) as StackState).endpoints;
  } catch {
    return undefined;
  }
}
