import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { kafkaClusterPorts } from './kafka-cluster.ts';
import type { StackLayout } from './layout.ts';
import { logMarks, logTails, PrerequisiteError, ServiceStartError, StackProblem } from './problems.ts';
import { delay, livePid, portOpen, startDetached, stopPid } from './proc.ts';
import type { Log } from './services.ts';

/**
 * Toxiproxy (github.com/Shopify/toxiproxy) between processes and the clusters, for the network
 * fault run of `npm run test:cluster`: latency, stalls, resets and partitions, injected through its
 * HTTP API. Built from the Go module proxy by `go install` into the stack folder the first time (no
 * release download, no Docker), then started like the stack's other services.
 */
export const TOXIPROXY_VERSION = 'v2.12.0';
const MODULE = 'github.com/Shopify/toxiproxy/v2/cmd/server';
const REDIS_CLUSTER_NODES = 6;

/**
 * The run's ports, above the Kafka cluster's (layout.ts bounds them): toxiproxy's API, then one
 * proxy per Redis Cluster node. The Kafka proxies listen where the nodes' PROXIED listeners
 * advertise (kafka-cluster.ts).
 */
export function networkFaultPorts(l: StackLayout): { api: number; redis: number[] } {
  const base = l.env.STACK_KAFKA_CLUSTER_PORT + 40;
  return {
    api: base,
    redis: Array.from({ length: REDIS_CLUSTER_NODES }, (_, i) => base + 1 + i),
  };
}

/** One proxy: its name, where it listens and what it forwards to. */
export interface ProxySpec {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
}

/**
 * Every proxy of the run: `kafka-<id>` in front of each node's PROXIED listener, `redis-<port>` in
 * front of each Redis Cluster node. Clients of the Redis Cluster reach it through these with
 * `natMap` (`REDIS_CLUSTER_NAT_MAP`, as `redisNatMap` writes it), since its nodes announce their
 * own ports.
 */
export function networkFaultProxies(l: StackLayout): ProxySpec[] {
  const ports = networkFaultPorts(l);
  return [
    ...kafkaClusterPorts(l).map((n) => ({
      name: `kafka-${n.id}`,
      listen: `127.0.0.1:${n.proxyPort}`,
      upstream: `127.0.0.1:${n.proxiedPort}`,
    })),
    ...ports.redis.map((listen, i) => {
      const node = l.env.STACK_REDIS_CLUSTER_PORT + i;
      return { name: `redis-${node}`, listen: `127.0.0.1:${listen}`, upstream: `127.0.0.1:${node}` };
    }),
  ];
}

/** What KAFKA_BROKERS, REDIS_CLUSTER_NODES and REDIS_CLUSTER_NAT_MAP take to pass the proxies. */
export function proxiedEndpoints(l: StackLayout): {
  KAFKA_BROKERS: string;
  REDIS_CLUSTER_NODES: string;
  REDIS_CLUSTER_NAT_MAP: string;
} {
  const proxies = networkFaultProxies(l);
  const redis = proxies.filter((p) => p.name.startsWith('redis-'));
  return {
    KAFKA_BROKERS: proxies
      .filter((p) => p.name.startsWith('kafka-'))
      .map((p) => p.listen)
      .join(','),
    REDIS_CLUSTER_NODES: redis.map((p) => p.listen).join(','),
    REDIS_CLUSTER_NAT_MAP: redis.map((p) => `${p.upstream}=${p.listen}`).join(','),
  };
}

const home = (l: StackLayout) => path.join(l.dir, 'toxiproxy');
const binary = (l: StackLayout) => path.join(l.dir, 'tools', 'bin', 'toxiproxy-server');
const pidFile = (l: StackLayout) => path.join(home(l), 'toxiproxy.pid');
const logFile = (l: StackLayout) => path.join(home(l), 'toxiproxy.log');

/**
 * The toxiproxy server's binary, built the first time with the Go toolchain (`go install`, modules
 * from the Go module proxy) into the stack folder, so `rm -rf .stack` removes it with the rest.
 */
export function ensureToxiproxy(l: StackLayout, log: Log = () => {}): string {
  const bin = binary(l);
  if (existsSync(bin)) return bin;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0)
    throw new PrerequisiteError(
      'toxiproxy: the network fault run builds toxiproxy with Go (`go install`), and `go` is not on the PATH.\n' +
        '  Install Go 1.23 or newer (https://go.dev/dl, or the golang-go package where it is that recent), or run `npm run test:cluster -- --no-network`.',
    );
  const tools = path.join(l.dir, 'tools');
  mkdirSync(path.join(tools, 'bin'), { recursive: true });
  log(`toxiproxy: building ${MODULE}@${TOXIPROXY_VERSION} with ${go.stdout.trim()}`);
  const r = spawnSync('go', ['install', `${MODULE}@${TOXIPROXY_VERSION}`], {
    encoding: 'utf8',
    env: {
      ...process.env,
      GOPATH: path.join(tools, 'go'),
      GOBIN: path.join(tools, 'bin'),
      GOCACHE: path.join(tools, 'go-build'),
      // Module files are read-only by default, which would make `rm -rf .stack` fail.
      GOFLAGS: '-modcacherw',
    },
  });
  if (r.status !== 0)
    throw new StackProblem(`toxiproxy: go install failed:\n${`${r.stdout}${r.stderr}`.trim().slice(-3000)}`);
  renameSync(path.join(tools, 'bin', 'server'), bin);
  return bin;
}

export interface ToxiproxyServer {
  /** Its HTTP API: `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly pid: number;
}

/**
 * Starts the toxiproxy server unless it runs (building it first if need be) and waits until its API
 * answers. It starts with no proxies: the run creates them.
 */
export async function toxiproxyUp(l: StackLayout, log: Log = () => {}): Promise<ToxiproxyServer> {
  const { api } = networkFaultPorts(l);
  const url = `http://127.0.0.1:${api}`;
  const running = livePid(pidFile(l), binary(l));
  if (running !== undefined) return { url, pid: running };
  const bin = ensureToxiproxy(l, log);
  const taken = [api, ...networkFaultPorts(l).redis, ...kafkaClusterPorts(l).map((n) => n.proxyPort)];
  for (const port of taken)
    if (await portOpen(port))
      throw new StackProblem(
        `toxiproxy: port ${port} is in use by another process (not one this stack folder started).\n` +
          `  Its ports and the proxies' lie 30 to 46 above STACK_KAFKA_CLUSTER_PORT; set that to move them.`,
      );
  mkdirSync(home(l), { recursive: true });
  const marks = logMarks([logFile(l)]);
  const pid = startDetached('toxiproxy', bin, ['-host', '127.0.0.1', '-port', String(api)], {
    cwd: home(l),
    logFile: logFile(l),
    pidFile: pidFile(l),
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(`${url}/version`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    const failed = livePid(pidFile(l), binary(l)) === undefined ? 'exited while starting' : undefined;
    if (failed || Date.now() > deadline)
      throw new ServiceStartError(
        'toxiproxy',
        [logFile(l)],
        `toxiproxy: ${failed ?? 'did not answer within 30 s'}\n${logTails([logFile(l)], { marks, lines: 10 })}`,
      );
    await delay(100);
  }
  log(`toxiproxy: started (pid ${pid}), API ${url}`);
  return { url, pid };
}

/** Stops the toxiproxy server this stack folder started, if it runs; whether it did. */
export async function toxiproxyDown(l: StackLayout): Promise<boolean> {
  const pid = livePid(pidFile(l), binary(l));
  if (pid === undefined) return false;
  await stopPid(pid);
  return true;
}
