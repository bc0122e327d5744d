import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { StackLayout } from './layout.ts';
import { ensureRedis } from './prereqs.ts';
import { StackProblem } from './problems.ts';
import { livePid, portOpen, run, startDetached, stopPid, waitFor } from './proc.ts';
import type { Log } from './services.ts';

/**
 * A six-node Redis Cluster on loopback (three primaries, each with a replica), from the same
 * Debian redis-server as the single node: what `npm run test:cluster` runs the store against to
 * show that every script touches one slot and that a failover is survived. Its nodes keep AOF like
 * the single node, and time out a silent peer after 2 s, so a killed primary's replica takes over
 * within seconds.
 */
export const CLUSTER_SIZE = 6;

export interface RedisCluster {
  /** `host:port,...` of every node: what REDIS_CLUSTER_NODES takes. */
  readonly nodes: string;
  readonly ports: readonly number[];
}

function portsOf(l: StackLayout): number[] {
  return Array.from({ length: CLUSTER_SIZE }, (_, i) => l.env.STACK_REDIS_CLUSTER_PORT + i);
}

function nodeDir(l: StackLayout, port: number): string {
  return path.join(l.dir, 'redis-cluster', String(port));
}

const pidFile = (l: StackLayout, port: number) => path.join(nodeDir(l, port), 'redis.pid');
const marker = (port: number) => `127.0.0.1:${port}`;

/** Starts whatever node is not running, and forms the cluster the first time. */
export async function redisClusterUp(l: StackLayout, log: Log = () => {}): Promise<RedisCluster> {
  const ports = portsOf(l);
  const bin = await ensureRedis(log, { lockTimeoutS: l.env.STACK_APT_LOCK_TIMEOUT_S });
  const started: number[] = [];
  for (const port of ports) {
    const existing = livePid(pidFile(l, port), marker(port));
    if (existing !== undefined) continue;
    if (await portOpen(port))
      throw new StackProblem(
        `redis-cluster: port ${port} is taken by another process (set STACK_REDIS_CLUSTER_PORT to move the six nodes)`,
      );
    const dir = nodeDir(l, port);
    mkdirSync(dir, { recursive: true });
    const pid = startDetached(
      `redis-cluster ${port}`,
      bin,
      [
        ...['--bind', '127.0.0.1', '--port', String(port), '--dir', dir],
        ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
        ...['--cluster-node-timeout', '2000', '--appendonly', 'yes', '--appendfsync', 'everysec'],
        ...['--save', '', '--daemonize', 'no', '--protected-mode', 'yes'],
      ],
      { cwd: dir, logFile: path.join(dir, 'redis.log'), pidFile: pidFile(l, port) },
    );
    if ((await waitFor(() => ping(port), pid, 30_000)) !== 'healthy')
      throw new StackProblem(
        `redis-cluster: the node on ${port} did not start; see ${path.join(dir, 'redis.log')}`,
      );
    started.push(port);
  }
  if (started.length > 0)
    log(`redis-cluster: started ${started.length} node(s) on ${ports[0]}–${ports.at(-1)}`);
  if (!(await clusterOk(ports[0] as number))) {
    const known = Number(
      (await info(ports[0] as number, 'CLUSTER', 'INFO')).match(/cluster_known_nodes:(\d+)/)?.[1],
    );
    if (known === 1) {
      // Never formed (the first start): three primaries, one replica each.
      const cli = path.join(path.dirname(bin), 'redis-cli');
      const r = run(cli, [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ]);
      if (r.status !== 0)
        throw new StackProblem(`redis-cluster: could not form the cluster:\n${r.out.slice(-2000)}`);
      log('redis-cluster: formed (3 primaries, 3 replicas)');
    }
    const deadline = Date.now() + 60_000;
    while (!(await clusterOk(ports[0] as number))) {
      if (Date.now() > deadline)
        throw new StackProblem('redis-cluster: the cluster did not reach state ok in 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), ports };
}

/** Stops every node this stack folder started. */
export async function redisClusterDown(l: StackLayout): Promise<number> {
  let stopped = 0;
  for (const port of portsOf(l)) {
    const pid = livePid(pidFile(l, port), marker(port));
    if (pid === undefined) continue;
    await stopPid(pid);
    stopped++;
  }
  return stopped;
}

/** The pid of the node on `port`, if this stack started it (for tests that kill a primary). */
export function redisClusterPid(l: StackLayout, port: number): number | undefined {
  return livePid(pidFile(l, port), marker(port));
}

/** Each node's port, and its pid when it runs (for stack:status). */
export function redisClusterNodes(l: StackLayout): Array<{ port: number; pid: number | undefined }> {
  return portsOf(l).map((port) => ({ port, pid: redisClusterPid(l, port) }));
}

/** Whether the node on `port` answers PING. */
export function redisClusterNodeHealthy(port: number): Promise<boolean> {
  return ping(port);
}

async function clusterOk(port: number): Promise<boolean> {
  return (await info(port, 'CLUSTER', 'INFO').catch(() => '')).includes('cluster_state:ok');
}

function ping(port: number): Promise<boolean> {
  return info(port, 'PING').then(
    (r) => r.startsWith('PONG'),
    () => false,
  );
}

/** One command over RESP, its reply as text (bulk or simple strings only): no client needed. */
function info(port: number, ...command: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    socket.setTimeout(2000, () => {
      socket.destroy();
      reject(new Error('timeout'));
    });
    socket.once('connect', () =>
      socket.write(
        `*${command.length}\r\n${command.map((c) => `$${Buffer.byteLength(c)}\r\n${c}\r\n`).join('')}`,
      ),
    );
    socket.on('data', (d) => {
      data += d.toString();
      const simple = /^\+(.*)\r\n/.exec(data);
      if (simple) {
        socket.destroy();
        resolve(simple[1] as string);
        return;
      }
      const bulk = /^\$(\d+)\r\n/.exec(data);
      if (bulk && data.length >= bulk[0].length + Number(bulk[1])) {
        socket.destroy();
        resolve(data.slice(bulk[0].length, bulk[0].length + Number(bulk[1])));
      }
      if (data.startsWith('-')) {
        socket.destroy();
        reject(new Error(data.trim()));
      }
    });
    socket.once('error', reject);
  });
}
