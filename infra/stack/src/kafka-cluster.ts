import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { probeBrokers } from '@assurance/kafka';
import type { StackLayout } from './layout.ts';
import { REPO_ROOT } from './layout.ts';
import { checkJava } from './prereqs.ts';
import { logMarks, logTails, ServiceStartError, StackProblem } from './problems.ts';
import { delay, livePid, portOpen, run, startDetached, stopPid } from './proc.ts';
import { fetchKafkaJars, type Log, replicationProperties } from './services.ts';

/**
 * A three-node Kafka cluster on loopback, each node a combined broker+controller (KRaft) with a
 * static quorum of all three, from the same jars as the single broker: what replication, min ISR
 * and a broker's death look like for real (the single broker runs everything at replication
 * factor 1, where neither can be seen). PLAINTEXT only, and no authorizer: the security listeners
 * are the single broker's business.
 */
export const KAFKA_CLUSTER_SIZE = 3;

/** A node's controller port lies this far above its client port. */
export const KAFKA_CLUSTER_CONTROLLER_OFFSET = 10;
/**
 * A node's second client listener, for clients that reach the cluster through a proxy (the
 * network fault run puts toxiproxy there), lies this far above its client port; it advertises the
 * proxy's port, KAFKA_CLUSTER_PROXY_OFFSET above, so such clients' every connection, bootstrap or
 * not, passes the proxy. Nothing listens there unless a proxy runs; the other listeners never
 * depend on it.
 */
export const KAFKA_CLUSTER_PROXIED_OFFSET = 20;
export const KAFKA_CLUSTER_PROXY_OFFSET = 30;

export interface KafkaClusterNode {
  /** node.id, 1 to KAFKA_CLUSTER_SIZE. */
  readonly id: number;
  /** The PLAINTEXT port clients use. */
  readonly port: number;
  /** The CONTROLLER port the quorum uses among the nodes. */
  readonly controllerPort: number;
  /** The PROXIED listener, which advertises `proxyPort` (where a proxy in front of it listens). */
  readonly proxiedPort: number;
  readonly proxyPort: number;
  /** Undefined while the node is down. */
  readonly pid: number | undefined;
}

export interface KafkaCluster {
  /** `127.0.0.1:port,...` of every node: what KAFKA_BROKERS takes. */
  readonly brokers: string;
  readonly ports: readonly number[];
  readonly nodes: ReadonlyArray<{ id: number; port: number; pid: number }>;
}

/** Every node's id and ports, whether it runs or not. */
export function kafkaClusterPorts(
  l: StackLayout,
): Array<{ id: number; port: number; controllerPort: number; proxiedPort: number; proxyPort: number }> {
  const base = l.env.STACK_KAFKA_CLUSTER_PORT;
  return Array.from({ length: KAFKA_CLUSTER_SIZE }, (_, i) => ({
    id: i + 1,
    port: base + i,
    controllerPort: base + KAFKA_CLUSTER_CONTROLLER_OFFSET + i,
    proxiedPort: base + KAFKA_CLUSTER_PROXIED_OFFSET + i,
    proxyPort: base + KAFKA_CLUSTER_PROXY_OFFSET + i,
  }));
}

const home = (l: StackLayout) => path.join(l.dir, 'kafka-cluster');
const nodeDir = (l: StackLayout, id: number) => path.join(home(l), String(id));
const propsFile = (l: StackLayout, id: number) => path.join(nodeDir(l, id), 'server.properties');
const pidFile = (l: StackLayout, id: number) => path.join(nodeDir(l, id), 'kafka.pid');
const dataDir = (l: StackLayout, id: number) => path.join(nodeDir(l, id), 'data');
const logsDir = (l: StackLayout, id: number) => path.join(nodeDir(l, id), 'logs');
// The properties file is on the node's command line and names its folder: no other process has it.
const marker = propsFile;
// The JVM's own complaints (heap, class path) reach stdout.log, never server.log.
const logFiles = (l: StackLayout, id: number) => [
  path.join(logsDir(l, id), 'server.log'),
  path.join(logsDir(l, id), 'stdout.log'),
];

function nodeOf(l: StackLayout, id: number) {
  const node = kafkaClusterPorts(l).find((n) => n.id === id);
  if (node === undefined)
    throw new StackProblem(`kafka-cluster: there is no node ${id}; the nodes are 1 to ${KAFKA_CLUSTER_SIZE}`);
  return node;
}

/** Each node as it is now: ports, and its pid when it runs. */
export function kafkaClusterNodes(l: StackLayout): KafkaClusterNode[] {
  return kafkaClusterPorts(l).map((n) => ({ ...n, pid: livePid(pidFile(l, n.id), marker(l, n.id)) }));
}

/** The properties of node `id`, rewritten on every start like the single broker's. */
export function kafkaClusterProperties(l: StackLayout, id: number): string {
  const nodes = kafkaClusterPorts(l);
  const self = nodeOf(l, id);
  const voters = nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',');
  return `# Written by infra/stack on every start; edit infra/stack/src/kafka-cluster.ts instead.
# Node ${id} of ${KAFKA_CLUSTER_SIZE}: a combined broker+controller (KRaft) on loopback.
process.roles=broker,controller
node.id=${id}
# A static quorum (every node a voter from the start), so the three storages are formatted alike
# with no --standalone or --initial-controllers, and any two nodes elect a leader.
controller.quorum.voters=${voters}
# PROXIED: the same brokers for clients behind a proxy on ${self.proxyPort}, which it advertises.
listeners=PLAINTEXT://127.0.0.1:${self.port},CONTROLLER://127.0.0.1:${self.controllerPort},PROXIED://127.0.0.1:${self.proxiedPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${self.port},PROXIED://127.0.0.1:${self.proxyPort}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=${dataDir(l, id)}
num.partitions=3
# Every topic and internal topic on all three nodes, and a write acknowledged by two: one node may
# die without losing an acknowledged record or refusing acks=all writes.
${replicationProperties(3, 2)}
# A replica that missed writes never becomes leader: losing data must show up as unavailability.
unclean.leader.election.enable=false
# Topics are provisioned explicitly with their configs; a typo must not create a topic.
auto.create.topics.enable=false
delete.topic.enable=true
# Tests create and join many groups: do not wait for more members that will never come.
group.initial.rebalance.delay.ms=0
# A killed node is fenced (its partitions led elsewhere) after 4 s of silence rather than 9.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
# Three JVMs share the machine with everything else.
num.network.threads=2
num.io.threads=2
log.cleaner.threads=1
log.cleaner.backoff.ms=5000
message.max.bytes=1048588
`;
}

/**
 * The cluster's id: the one its nodes were formatted with, so that a node whose storage was deleted
 * is formatted into the same cluster; a new one for the first node ever.
 */
function clusterId(l: StackLayout): string {
  for (const n of kafkaClusterPorts(l)) {
    const meta = path.join(dataDir(l, n.id), 'meta.properties');
    if (!existsSync(meta)) continue;
    const id = /^cluster\.id=(.+)$/m.exec(readFileSync(meta, 'utf8'))?.[1]?.trim();
    if (id) return id;
  }
  const file = path.join(home(l), 'cluster-id');
  if (!existsSync(file)) {
    mkdirSync(home(l), { recursive: true });
    writeFileSync(file, `${randomBytes(16).toString('base64url')}\n`);
  }
  return readFileSync(file, 'utf8').trim();
}

/**
 * Starts node `id` unless it runs, without waiting for it: a node alone has no quorum and never
 * answers, so the cluster's start launches every node before waiting for any.
 */
async function launch(l: StackLayout, id: number, javaBin: string, log: Log) {
  const node = nodeOf(l, id);
  const existing = livePid(pidFile(l, id), marker(l, id));
  if (existing !== undefined) return { ...node, pid: existing, started: false };
  for (const [port, what] of [
    [node.port, 'client'],
    [node.controllerPort, 'controller'],
    [node.proxiedPort, 'proxied client'],
  ] as const) {
    if (await portOpen(port))
      throw new StackProblem(
        `kafka-cluster: port ${port} for node ${id}'s ${what} listener is in use by another process (not one this stack folder started).\n` +
          `  Set STACK_KAFKA_CLUSTER_PORT to move the cluster: its nodes use that port and the next ${KAFKA_CLUSTER_SIZE - 1} for clients, ` +
          `and the same ${KAFKA_CLUSTER_CONTROLLER_OFFSET} higher for the quorum, ${KAFKA_CLUSTER_PROXIED_OFFSET} higher for proxied clients ` +
          `and ${KAFKA_CLUSTER_PROXY_OFFSET} higher for their proxy.`,
      );
  }
  mkdirSync(logsDir(l, id), { recursive: true });
  writeFileSync(propsFile(l, id), kafkaClusterProperties(l, id));
  if (!existsSync(path.join(dataDir(l, id), 'meta.properties'))) {
    const cid = clusterId(l);
    const r = run(javaBin, [
      '-cp',
      `${l.kafka.lib}/*`,
      'kafka.tools.StorageTool',
      'format',
      // One argument with `=`: a base64url id may begin with '-', which argparse would take for a flag.
      `--cluster-id=${cid}`,
      '-c',
      propsFile(l, id),
    ]);
    if (r.status !== 0)
      throw new StackProblem(
        `kafka-cluster: formatting node ${id}'s storage in ${dataDir(l, id)} failed:\n${r.out.trimEnd().slice(-3000)}\n` +
          `  Deleting ${home(l)} (with the cluster down) starts the cluster afresh.`,
      );
    log(`kafka-cluster: formatted node ${id}'s KRaft storage (cluster ${cid})`);
  }
  const pid = startDetached(
    `kafka-cluster node ${id}`,
    javaBin,
    [
      `-Xmx${l.env.STACK_KAFKA_CLUSTER_HEAP}`,
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${path.join(REPO_ROOT, 'infra', 'kafka', 'log4j2.yaml')}`,
      `-Dkafka.logs.dir=${logsDir(l, id)}`,
      '-cp',
      `${l.kafka.lib}/*`,
      'kafka.Kafka',
      propsFile(l, id),
    ],
    { cwd: nodeDir(l, id), logFile: path.join(logsDir(l, id), 'stdout.log'), pidFile: pidFile(l, id) },
  );
  return { ...node, pid, started: true };
}

/** True when the node on `port` answers metadata naming at least `brokers` live brokers. */
async function answers(port: number, brokers: number): Promise<boolean> {
  if (!(await portOpen(port))) return false;
  return (await probeBrokers(`127.0.0.1:${port}`, 1000).catch(() => 0)) >= brokers;
}

/** Whether node `port` serves clients now (for stack:status): it answers metadata. */
export async function kafkaClusterNodeHealthy(port: number): Promise<boolean> {
  // Until a killed node is fenced (seconds), metadata still names it, and the probe's client may
  // pick it for its request and fail: a live node would show as unhealthy by bad luck alone.
  for (let attempt = 0; attempt < 3; attempt++) if (await answers(port, 1)) return true;
  return false;
}

/**
 * Waits until each of `nodes` answers metadata naming all the cluster's brokers (each registered
 * and unfenced); otherwise a problem naming the node that died, or those still not answering,
 * with their logs' new lines.
 */
async function awaitNodes(
  l: StackLayout,
  nodes: ReadonlyArray<{ id: number; port: number; pid: number }>,
  marks: Map<string, number>,
): Promise<void> {
  const timeoutS = l.env.STACK_START_TIMEOUT_S;
  const deadline = Date.now() + timeoutS * 1000;
  const failure = (bad: ReadonlyArray<{ id: number; pid: number }>, what: string) => {
    const files = bad.flatMap((n) => logFiles(l, n.id));
    return new ServiceStartError(
      'kafka-cluster',
      files,
      `${what}\n${logTails(files, { marks, lines: 10 })}\n` +
        '  npm run stack:status shows what runs; npm run stack:down -- --cluster stops the cluster.',
    );
  };
  let interval = 100;
  for (;;) {
    const ok = await Promise.all(nodes.map((n) => answers(n.port, KAFKA_CLUSTER_SIZE)));
    if (ok.every(Boolean)) return;
    // A dead node never comes back by itself: no point waiting out the timeout for it.
    const dead = nodes.filter((n) => livePid(pidFile(l, n.id), marker(l, n.id)) !== n.pid);
    if (dead.length > 0)
      throw failure(
        dead,
        dead.map((n) => `kafka-cluster: node ${n.id} (pid ${n.pid}) exited while starting.`).join('\n'),
      );
    if (Date.now() > deadline) {
      const slow = nodes.filter((_, i) => !ok[i]);
      throw failure(
        slow,
        `kafka-cluster: node(s) ${slow.map((n) => n.id).join(', ')} did not answer with all ${KAFKA_CLUSTER_SIZE} brokers ` +
          `within ${timeoutS} s (STACK_START_TIMEOUT_S).`,
      );
    }
    await delay(interval);
    interval = Math.min(interval * 2, 1000);
  }
}

/**
 * Starts whatever node is not running (formatting its storage the first time) and waits until every
 * node answers metadata naming all three brokers.
 */
export async function kafkaClusterUp(l: StackLayout, log: Log = () => {}): Promise<KafkaCluster> {
  fetchKafkaJars(l, log);
  const java = checkJava();
  const ids = kafkaClusterPorts(l).map((n) => n.id);
  const marks = logMarks(ids.flatMap((id) => logFiles(l, id)));
  const nodes = [];
  for (const id of ids) nodes.push(await launch(l, id, java.bin, log));
  const started = nodes.filter((n) => n.started);
  if (started.length > 0)
    log(`kafka-cluster: started node(s) ${started.map((n) => `${n.id} (pid ${n.pid})`).join(', ')}`);
  await awaitNodes(l, nodes, marks);
  return {
    brokers: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    ports: nodes.map((n) => n.port),
    nodes: nodes.map(({ id, port, pid }) => ({ id, port, pid })),
  };
}

/** Stops every node this stack folder started; how many were running. */
export async function kafkaClusterDown(l: StackLayout): Promise<number> {
  const running = kafkaClusterNodes(l).filter((n) => n.pid !== undefined);
  // All at once: stopped one by one, the last node waits for a quorum that left before it.
  await Promise.all(running.map((n) => stopPid(n.pid as number)));
  return running.length;
}

/**
 * SIGKILLs node `id` (no controlled shutdown: a crash, for chaos tests) and resolves once the
 * process is gone; its pid.
 */
export async function killKafkaClusterNode(l: StackLayout, id: number): Promise<number> {
  nodeOf(l, id);
  const pid = livePid(pidFile(l, id), marker(l, id));
  if (pid === undefined)
    throw new StackProblem(
      `kafka-cluster: node ${id} is not running, so there is nothing to kill (npm run stack:up -- --cluster starts it)`,
    );
  process.kill(pid, 'SIGKILL');
  // livePid, not signal 0: an unreaped zombie still takes signals but has lost its command line.
  while (livePid(pidFile(l, id), marker(l, id)) !== undefined) await delay(50);
  return pid;
}

/**
 * Starts node `id` again (if it is down) and waits until it answers metadata naming all three
 * brokers: it has registered and been unfenced (so the other two must run too). Its replicas may
 * still be catching up with the leaders, out of the ISR for a few seconds more.
 */
export async function startKafkaClusterNode(
  l: StackLayout,
  id: number,
  log: Log = () => {},
): Promise<{ id: number; port: number; pid: number }> {
  nodeOf(l, id);
  fetchKafkaJars(l, log);
  const java = checkJava();
  const marks = logMarks(logFiles(l, id));
  const node = await launch(l, id, java.bin, log);
  if (node.started) log(`kafka-cluster: started node ${id} (pid ${node.pid})`);
  await awaitNodes(l, [node], marks);
  return { id, port: node.port, pid: node.pid };
}
