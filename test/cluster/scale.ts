/**
 * `npm run bench:cluster`: the pipeline on the local three-broker Kafka cluster and six-node Redis
 * Cluster with 1, 2 and 3 engine processes (issue 14). For each engine count, on a fresh namespace:
 *
 * 1. backlog: SCALE_EVENTS SOC raises and clears over SCALE_IDENTITIES identities, sent as fast as
 *    the cluster takes them (the broker's figure), decided while they arrive; events/s is events
 *    over the time from the first send until every identity's last decision equals the oracle;
 * 2. paced: SCALE_RATE events/s for SCALE_PACED_SECONDS on other identities; latency is from each
 *    send to its decision arriving on the decisions topic (p50, p99);
 * 3. Redis: bytes used per identity over every primary (INFO used_memory, before and after 1).
 *
 * Everything shares this machine (three brokers, six Redis nodes, the registry, the engines and the
 * load generator): the figures say how the pipeline scales here, not what dedicated hosts reach.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLogger } from '@assurance/core';
import type { EngineConfig } from '@assurance/engine';
import { createKafka, createProducer, type OutboundMessage, parseBrokers } from '@assurance/kafka';
import { createRedisCluster, keySpace, MetaStore } from '@assurance/redis';
import { type Decision, topicNames } from '@assurance/schemas';
import { clusterUp, resolveLayout } from '@assurance/stack';
import { Kafka, logLevel } from 'kafkajs';
import { EngineProcess } from '../src/engine-process.ts';
import { DecisionWatcher } from '../src/pipeline.ts';
import { clusterEngineConfig, type Op, pause, socLoad, until } from './support.ts';

const int = (name: string, dflt: number) => {
  const v = process.env[name];
  const n = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number, got "${v}"`);
  return n;
};
const ENGINE_COUNTS = (process.env.SCALE_ENGINES ?? '1,2,3').split(',').map(Number);
const EVENTS = int('SCALE_EVENTS', 40_000);
const IDENTITIES = int('SCALE_IDENTITIES', 4_000);
const RATE = int('SCALE_RATE', 1_000);
const PACED_SECONDS = int('SCALE_PACED_SECONDS', 15);

const t0 = Date.now();
const say = (m: string) => process.stderr.write(`[scale ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
const logger = createLogger('scale', 'silent');
const cluster = await clusterUp((m) => say(`stack: ${m}`), resolveLayout());
const brokers = parseBrokers(cluster.endpoints.KAFKA_BROKERS);
const admin = new Kafka({ brokers, clientId: 'scale-admin', logLevel: logLevel.NOTHING }).admin();
await admin.connect();
const redis = createRedisCluster(cluster.endpoints.REDIS_CLUSTER_NODES, { kind: 'tool' });
await redis.connect();

/** The machine's CPU time so far, busy and total, in clock ticks (/proc/stat's first line). */
function machineCpu(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU ticks a process has used (user + system), 0 once it is gone. */
function processCpu(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  } catch {
    return 0;
  }
}

/** Bytes Redis uses, over every primary. */
async function usedMemory(): Promise<number> {
  let sum = 0;
  for (const node of redis.nodes('master'))
    sum += Number(/^used_memory:(\d+)/m.exec(await node.info('memory'))?.[1] ?? 0);
  return sum;
}

const seenIds = (d: Decision) =>
  d.signals
    .map((s) => String((s.attributes as Record<string, unknown>).signalId ?? ''))
    .filter((s) => s !== '')
    .sort()
    .join(',');

interface Row {
  engines: number;
  eventsPerS: number;
  produceMBps: number;
  p50: number;
  p99: number;
  bytesPerIdentity: number;
  /** The machine's CPU busy during the backlog, and the engines' share of that busy time. */
  machineBusy: number;
  engineShare: number;
}

async function measure(engines: number): Promise<Row> {
  const run = randomBytes(3).toString('hex');
  const config: EngineConfig = clusterEngineConfig(cluster.endpoints, 'scale', run);
  const topics = topicNames(config.TOPIC_NAMESPACE);
  const procs = [new EngineProcess(config)];
  await until('the topics exist', 120_000, async () => {
    const existing = await admin.listTopics();
    return Object.values(topics).every((t) => existing.includes(t));
  });
  for (let i = 1; i < engines; i++) procs.push(new EngineProcess(config));
  const watcher = await DecisionWatcher.start(config, logger);
  const producer = await createProducer(createKafka({ brokers, clientId: 'scale', logger }));
  const send = (ops: readonly Op[]) =>
    producer.send(
      ops.map(
        (o): OutboundMessage => ({
          topic: topics.compromiseSignal,
          key: `identity:${o.identity}`,
          value: Buffer.from(JSON.stringify(o.value)),
        }),
      ),
    );
  try {
    // Every engine up and in its groups: one event per engine decided after the last one started.
    const warm = socLoad(`${run}w`, engines * 4, engines * 4, 1000);
    await send(warm.ops);
    await until('the engines decide', 120_000, async () =>
      warm.ids.every((id) => watcher.forIdentity(id).length > 0),
    );

    const load = socLoad(run, EVENTS, IDENTITIES, 1000);
    const memBefore = await usedMemory();
    const cpuBefore = machineCpu();
    const enginesBefore = procs.reduce((a, p) => a + processCpu(p.pid), 0);
    const start = Date.now();
    let bytes = 0;
    for (let i = 0; i < load.ops.length; i += 1000) {
      const chunk = load.ops.slice(i, i + 1000);
      bytes += chunk.reduce((a, o) => a + JSON.stringify(o.value).length, 0);
      await send(chunk);
    }
    const produced = (Date.now() - start) / 1000;
    const last = new Map<string, Decision>();
    let indexed = 0;
    const wanted = (id: string) => [...(load.expected.get(id)?.keys() ?? [])].sort().join(',');
    await until('every identity is decided', 600_000, async () => {
      for (; indexed < watcher.decisions.length; indexed++) {
        const d = watcher.decisions[indexed] as Decision;
        const prev = last.get(d.identityId);
        if (!prev || d.sequence >= prev.sequence) last.set(d.identityId, d);
      }
      return load.ids.every((id) => {
        const d = last.get(id);
        return d !== undefined && seenIds(d) === wanted(id);
      });
    });
    const eventsPerS = EVENTS / ((Date.now() - start) / 1000);
    const cpuAfter = machineCpu();
    const busy = cpuAfter.busy - cpuBefore.busy;
    const machineBusy = busy / (cpuAfter.total - cpuBefore.total);
    const engineShare = (procs.reduce((a, p) => a + processCpu(p.pid), 0) - enginesBefore) / busy;
    const bytesPerIdentity = Math.max(0, ((await usedMemory()) - memBefore) / IDENTITIES);

    // Paced: each event's send time, then its decision's arrival.
    const paced = socLoad(`${run}p`, RATE * PACED_SECONDS, Math.max(100, RATE), PACED_SECONDS * 1000);
    const sentAt = new Map<string, number>();
    const decisionsBefore = watcher.decisions.length;
    const tick = Math.max(1, Math.floor(RATE / 10));
    const pacedStart = Date.now();
    for (let i = 0; i < paced.ops.length; i += tick) {
      const chunk = paced.ops.slice(i, i + tick);
      const at = Date.now();
      for (const o of chunk) sentAt.set(String(o.value.eventId), at);
      await send(chunk);
      const due = pacedStart + ((i + tick) / RATE) * 1000 - Date.now();
      if (due > 0) await pause(due);
    }
    const arrived = new Map<string, number>();
    const seen = new Set<string>();
    await until('the paced events are decided', 300_000, async () => {
      for (const d of watcher.decisions.slice(decisionsBefore)) {
        const id = d.trigger.eventId;
        if (!seen.has(id) && sentAt.has(id)) {
          seen.add(id);
          arrived.set(id, Date.parse(d.computedAt));
        }
      }
      return arrived.size >= sentAt.size * 0.99;
    });
    // The decision's computedAt is taken just before it is sent; readers see it a produce later.
    const lat = [...arrived].map(([id, at]) => at - (sentAt.get(id) ?? at)).sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
    return {
      engines,
      eventsPerS,
      produceMBps: bytes / produced / 1e6,
      p50: q(0.5),
      p99: q(0.99),
      bytesPerIdentity,
      machineBusy,
      engineShare,
    };
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await watcher.stop();
    await producer.close();
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    await new MetaStore(redis, keySpace(config.REDIS_PREFIX)).wipe().catch(() => 0);
  }
}

const rows: Row[] = [];
for (const engines of ENGINE_COUNTS) {
  say(
    `${engines} engine(s): ${EVENTS} events over ${IDENTITIES} identities, then ${RATE} events/s for ${PACED_SECONDS} s`,
  );
  rows.push(await measure(engines));
  say(JSON.stringify(rows.at(-1)));
}
const one = rows.find((r) => r.engines === 1)?.eventsPerS;
const lines = [
  `cluster bench: 3 KRaft brokers (RF 3, min ISR 2), Redis Cluster 3 primaries + 3 replicas, ${process.env.HOSTNAME ?? 'this host'} (all co-located)`,
  '| engines | events/s (backlog) | per-engine efficiency | decision latency p50 / p99 at ' +
    `${RATE} events/s | Redis bytes per identity | load produced at | machine CPU busy (engines' share) |`,
  '|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.engines} | ${Math.round(r.eventsPerS).toLocaleString('en')} | ${one ? (r.eventsPerS / (one * r.engines)).toFixed(2) : '-'} | ${r.p50} / ${r.p99} ms | ${Math.round(r.bytesPerIdentity)} | ${r.produceMBps.toFixed(1)} MB/s | ${Math.round(r.machineBusy * 100)} % (${Math.round(r.engineShare * 100)} %) |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
await admin.disconnect();
redis.disconnect();
