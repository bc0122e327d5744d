/**
 * The chaos run of `npm run test:cluster` (issue 14): events through several engine processes on
 * the local three-broker Kafka cluster and six-node Redis Cluster while engines are SIGKILLed, the
 * leader broker of a busy partition is killed and restarted, and a Redis primary is killed so that
 * its replica takes over. Then every identity's last decision on the decisions topic is compared
 * with an oracle computed from the input alone, and every identity's decisions with their order.
 *
 * The events are SOC raises and clears of identity signals, open-ended, so the oracle is a set per
 * identity: the signals raised and not cleared since. Prints the figures and `lost N,
 * duplicated-without-sequence M`; exits 1 unless both are 0 and every check holds.
 *
 * Sizes: CHAOS_EVENTS (100000), CHAOS_IDENTITIES (5000), CHAOS_ENGINES (3), CHAOS_ENGINE_KILLS
 * (50), CHAOS_BROKER_KILLS (2), CHAOS_REDIS_FAILOVERS (1), CHAOS_SECONDS (how long production and
 * faults last, 90), CHAOS_DRAIN_TIMEOUT_S (600).
 *
 * `--network`: the faults are on the network instead. The engines and an API process reach the
 * brokers and the Redis Cluster through toxiproxy (the nodes' PROXIED listeners, and
 * REDIS_CLUSTER_NAT_MAP), while this script's own producer and readers do not. In turn: latency on
 * every connection, Redis stalled, Redis timing out, Kafka connections reset, Kafka timing out,
 * Redis cut off, Kafka cut off, each followed by a healthy spell. The API is read all along:
 * while Redis is cut off every answer must be degraded, and after the run the API must answer
 * every identity, undegraded, with its last decision's tiers. Sizes default to 30000 events, 3000
 * identities, 2 engines and no process kills.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { createLogger } from '@assurance/core';
import { digestOf, type EngineConfig, materialOf } from '@assurance/engine';
import { createKafka, createProducer, type OutboundMessage, parseBrokers } from '@assurance/kafka';
import { createRedisCluster } from '@assurance/redis';
import { type Decision, topicNames } from '@assurance/schemas';
import {
  clusterUp,
  killKafkaClusterNode,
  networkFaultProxies,
  proxiedEndpoints,
  redisClusterPid,
  redisClusterUp,
  resolveLayout,
  startKafkaClusterNode,
  toxiproxyDown,
  toxiproxyUp,
} from '@assurance/stack';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { type ICreateToxicBody, Toxiproxy } from 'toxiproxy-node-client';
import { ApiProcess } from '../src/api-process.ts';
import { EngineProcess } from '../src/engine-process.ts';
import { DecisionWatcher } from '../src/pipeline.ts';
import { freePort } from '../src/wait.ts';
import { clusterEngineConfig, groupLag, type Kind, pause, socLoad, until } from './support.ts';

const { values: opts } = parseArgs({
  options: {
    'keep-logs': { type: 'boolean', default: false },
    network: { type: 'boolean', default: false },
  },
});
const NETWORK = opts.network;
const int = (name: string, dflt: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${v}"`);
  return n;
};
const EVENTS = int('CHAOS_EVENTS', NETWORK ? 30_000 : 100_000);
const IDENTITIES = Math.min(int('CHAOS_IDENTITIES', NETWORK ? 3_000 : 5_000), EVENTS);
const ENGINES = Math.max(1, int('CHAOS_ENGINES', NETWORK ? 2 : 3));
const ENGINE_KILLS = int('CHAOS_ENGINE_KILLS', NETWORK ? 0 : 50);
const BROKER_KILLS = int('CHAOS_BROKER_KILLS', NETWORK ? 0 : 2);
const REDIS_FAILOVERS = int('CHAOS_REDIS_FAILOVERS', NETWORK ? 0 : 1);
const SECONDS = Math.max(5, int('CHAOS_SECONDS', 90));
// Each network phase must outlast the API's lag bound (below) with reads to spare.
if (NETWORK && SECONDS < 75) throw new Error(`--network needs CHAOS_SECONDS of 75 or more, got ${SECONDS}`);
const DRAIN_TIMEOUT_MS = int('CHAOS_DRAIN_TIMEOUT_S', 600) * 1000;
/** Where each engine's whole output goes at the end (else only the last lines of each, on failure). */
const LOG_DIR = process.env.CHAOS_LOG_DIR;

const t0 = Date.now();
const say = (m: string) => process.stderr.write(`[chaos ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
const layout = resolveLayout();
const logger = createLogger('chaos', 'silent');

// ---- the input and its oracle -----------------------------------------------------------------

const run = randomBytes(3).toString('hex');
const load = socLoad(run, EVENTS, IDENTITIES, SECONDS * 1000);
const { ids } = load;
const expected = load.expected;

// ---- the pipeline -----------------------------------------------------------------------------

const cluster = await clusterUp((m) => say(`stack: ${m}`), layout);
const toxiproxy = NETWORK ? await proxies() : undefined;
// This script's own clients (producer, admin, the decisions' reader) never pass the proxies: the
// faults are between the pipeline's processes and the clusters.
const config: EngineConfig = clusterEngineConfig(cluster.endpoints, NETWORK ? 'net' : 'chaos', run, {
  CONSUMER_SESSION_TIMEOUT: '6s',
  STORE_CHECK_INTERVAL: '1s',
  RETRY_BACKOFF: '300ms',
  LOG_LEVEL: process.env.CHAOS_ENGINE_LOG_LEVEL ?? 'warn',
});
const engineConfig: EngineConfig = NETWORK ? { ...config, ...proxiedEndpoints(layout) } : config;
const topics = topicNames(config.TOPIC_NAMESPACE);
say(
  `${EVENTS} events over ${IDENTITIES} identities, ${ENGINES} engines, ${ENGINE_KILLS} engine kills, ${BROKER_KILLS} broker kills, ${REDIS_FAILOVERS} Redis failover(s), ${SECONDS} s of faults`,
);

const engines: Array<EngineProcess | undefined> = [];
const dead: EngineProcess[] = [];
let engineRestarts = 0;
let stopping = false;
/**
 * An engine in a slot, started again whenever it exits, as its supervisor would: one that cannot
 * reach a broker at start (one is being killed) exits, and must not leave the slot empty.
 */
const startEngineProcess = (slot: number) => {
  const e = new EngineProcess(engineConfig, { keep: LOG_DIR ? Number.POSITIVE_INFINITY : 400 });
  engines[slot] = e;
  void e.exited.then(() => {
    if (stopping || engines[slot] !== e) return;
    dead.push(e);
    engineRestarts++;
    startEngineProcess(slot);
  });
};
// The first engine provisions the topics (as every engine does at start); the rest join it.
startEngineProcess(0);
const kafka = createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'chaos', logger });
const rawKafka = new Kafka({
  brokers: parseBrokers(config.KAFKA_BROKERS),
  clientId: 'chaos-admin',
  logLevel: logLevel.NOTHING,
});
const admin = rawKafka.admin();
await admin.connect();
await until('the topics exist', 120_000, async () => {
  const existing = await admin.listTopics();
  return Object.values(topics).every((t) => existing.includes(t));
});
for (let i = 1; i < ENGINES; i++) startEngineProcess(i);
const watcher = await DecisionWatcher.start(config, logger);
const producer = await createProducer(kafka);
const API_TOKEN = randomBytes(24).toString('base64url');
/** Shorter than the API's default (10 s), so that a partition outlasts it within a phase. */
const API_LAG_MAX_AGE_MS = 2500;
const api = NETWORK
  ? await ApiProcess.start(engineConfig, {
      port: await freePort(),
      tokens: `chaos:${API_TOKEN}:decisions:read`,
      // Redis answers slowly on purpose in some phases: a read waits for it a little longer.
      env: { REDIS_TIMEOUT: '1s', LAG_MAX_AGE: `${API_LAG_MAX_AGE_MS}ms` },
      keep: 400,
    })
  : undefined;

const ops = load.ops;
let acknowledged = 0;
let sendRetries = 0;

/** Sends in batches paced over SECONDS; a batch the cluster refuses (a broker just died) is sent again. */
async function produce(): Promise<void> {
  const batch = 500;
  const perBatchMs = (SECONDS * 1000) / Math.ceil(ops.length / batch);
  for (let i = 0; i < ops.length; i += batch) {
    const started = Date.now();
    const messages: OutboundMessage[] = ops.slice(i, i + batch).map((o) => ({
      topic: topics.compromiseSignal,
      key: `identity:${o.identity}`,
      value: Buffer.from(JSON.stringify(o.value)),
    }));
    for (let attempt = 1; ; attempt++) {
      try {
        await producer.send(messages);
        break;
      } catch (err) {
        sendRetries++;
        if (attempt >= 30) throw err;
        await pause(500);
      }
    }
    acknowledged += messages.length;
    const wait = perBatchMs - (Date.now() - started);
    if (wait > 0) await pause(wait);
  }
}

// ---- the faults -------------------------------------------------------------------------------

let engineKills = 0;
let brokerKills = 0;
let redisFailovers = 0;

async function killEngines(): Promise<void> {
  if (ENGINE_KILLS === 0) return;
  const every = (SECONDS * 1000) / (ENGINE_KILLS + 1);
  for (let k = 0; k < ENGINE_KILLS; k++) {
    await pause(every);
    const slot = Math.floor(Math.random() * ENGINES);
    const victim = engines[slot];
    // Taken out of its slot first, so its exit is this kill's, not one to restart from.
    engines[slot] = undefined;
    if (victim) {
      await victim.kill();
      dead.push(victim);
    }
    engineKills++;
    startEngineProcess(slot);
  }
}

/** The broker leading partition 0 of the internal topic (every event passes it), killed and restarted. */
async function killBrokers(): Promise<void> {
  for (let k = 0; k < BROKER_KILLS; k++) {
    await pause((SECONDS * 1000 * (k + 1)) / (BROKER_KILLS + 2));
    const meta = await admin.fetchTopicMetadata({ topics: [topics.identityEvents] });
    const leader = meta.topics[0]?.partitions.find((p) => p.partitionId === 0)?.leader;
    if (leader === undefined) throw new Error('no leader for the internal topic');
    await killKafkaClusterNode(layout, leader);
    say(`killed broker ${leader} (leader of ${topics.identityEvents}-0)`);
    brokerKills++;
    // The broker stays down for a while: producers and consumers move to the new leaders.
    await pause(8000);
    await startKafkaClusterNode(layout, leader, (m) => say(`stack: ${m}`));
    say(`broker ${leader} back`);
  }
}

/** A Redis primary killed; its replica takes over; the old primary then rejoins as a replica. */
async function failRedis(): Promise<void> {
  for (let k = 0; k < REDIS_FAILOVERS; k++) {
    await pause((SECONDS * 1000 * (2 * k + 1)) / (2 * REDIS_FAILOVERS + 1));
    const probe = createRedisCluster(cluster.endpoints.REDIS_CLUSTER_NODES, { kind: 'tool' });
    await probe.connect();
    try {
      const primary = probe.nodes('master')[k % 3];
      const port = Number(primary?.options.port);
      const pid = redisClusterPid(layout, port);
      if (pid === undefined) throw new Error(`no pid for the Redis primary on ${port}`);
      process.kill(pid, 'SIGKILL');
      say(`killed the Redis primary on ${port}`);
      redisFailovers++;
      const survivor = cluster.redis.ports.find((p) => p !== port) as number;
      await until('a replica took over', 60_000, () => failedOver(survivor, port));
      say('a replica took over; restarting the old primary as a replica');
      await redisClusterUp(layout, (m) => say(`stack: ${m}`));
    } finally {
      probe.disconnect();
    }
  }
}

/** Adds to `found` the wanted event ids that some message of `topic` carries. */
async function scanTopic(topic: string, wanted: ReadonlySet<string>, found: Set<string>): Promise<void> {
  const reader = rawKafka.consumer({ groupId: `chaos-diag-${run}-${topic}` });
  await reader.connect();
  await reader.subscribe({ topic, fromBeginning: true });
  const ends = await admin.fetchTopicOffsets(topic);
  const total = ends.reduce((a, e) => a + Number(e.high), 0);
  let read = 0;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 60_000);
    void reader.run({
      eachMessage: async ({ message }) => {
        read++;
        const text = message.value?.toString('latin1') ?? '';
        for (const m of text.matchAll(/ev-[0-9a-f]{6}-\d+/g)) if (wanted.has(m[0])) found.add(m[0]);
        if (read >= total) {
          clearTimeout(t);
          resolve();
        }
      },
    });
  });
  await reader.disconnect();
}

/** Whether the cluster, as `survivor` sees it, is whole again with three primaries other than `dead`. */
async function failedOver(survivor: number, dead: number): Promise<boolean> {
  // A plain connection with a command timeout: a cluster client may queue behind the dead node.
  const r = new Redis({ port: survivor, host: '127.0.0.1', lazyConnect: true, commandTimeout: 2000 });
  r.on('error', () => {});
  try {
    await r.connect();
    const info = String(await r.call('CLUSTER', 'INFO'));
    const nodes = String(await r.call('CLUSTER', 'NODES')).split('\n');
    const primaries = nodes.filter((l) => {
      const flags = (l.split(' ')[2] ?? '').split(',');
      return flags.includes('master') && !flags.some((f) => f.startsWith('fail')) && !l.includes(`:${dead}@`);
    });
    return info.includes('cluster_state:ok') && primaries.length === 3;
  } finally {
    r.disconnect();
  }
}

// ---- network faults (--network) ---------------------------------------------------------------

/** Toxiproxy running, with the run's proxies in place, enabled and without toxics. */
async function proxies(): Promise<Toxiproxy> {
  const server = await toxiproxyUp(layout, (m) => say(`stack: ${m}`));
  const client = new Toxiproxy(server.url);
  await client.populate(networkFaultProxies(layout).map((p) => ({ ...p, enabled: true })));
  await client.reset();
  return client;
}

const proxyNames = (kind: 'kafka' | 'redis') =>
  networkFaultProxies(layout)
    .filter((p) => p.name.startsWith(`${kind}-`))
    .map((p) => p.name);

interface NetworkPhase {
  readonly name: string;
  readonly what: string;
  /** Puts the fault in place; `toxiproxy.reset()` takes every fault away. */
  readonly apply: (t: Toxiproxy) => Promise<void>;
  /** When set, every read asked this long after the fault began and answered before its end must be degraded. */
  readonly degradedAfterMs?: number;
}

const toxic = async (t: Toxiproxy, kind: 'kafka' | 'redis', body: ICreateToxicBody<unknown>) => {
  for (const name of proxyNames(kind)) await (await t.get(name)).addToxic(body);
};
const cutOff = async (t: Toxiproxy, kind: 'kafka' | 'redis') => {
  for (const name of proxyNames(kind)) {
    const p = await t.get(name);
    await p.update({ enabled: false, listen: p.listen, upstream: p.upstream });
  }
};
const NETWORK_PHASES: NetworkPhase[] = [
  {
    name: 'latency',
    what: '150 ± 100 ms more each way on every connection to Kafka and Redis',
    apply: async (t) => {
      for (const kind of ['kafka', 'redis'] as const)
        for (const stream of ['upstream', 'downstream'] as const)
          await toxic(t, kind, {
            name: `latency-${stream}`,
            type: 'latency',
            stream,
            toxicity: 1,
            attributes: { latency: 150, jitter: 100 },
          });
    },
  },
  {
    name: 'redis-stall',
    what: 'Redis connections stall: nothing passes until the fault ends, then all of it',
    apply: (t) =>
      toxic(t, 'redis', {
        name: 'stall',
        type: 'timeout',
        stream: 'upstream',
        toxicity: 1,
        attributes: { timeout: 0 },
      }),
  },
  {
    name: 'redis-timeout',
    what: 'Redis connections go silent and are closed after 2 s',
    apply: (t) =>
      toxic(t, 'redis', {
        name: 'timeout',
        type: 'timeout',
        stream: 'upstream',
        toxicity: 1,
        attributes: { timeout: 2000 },
      }),
  },
  {
    name: 'kafka-reset',
    what: 'half of the Kafka connections reset by peer 500 ms after they open',
    apply: (t) =>
      toxic(t, 'kafka', {
        name: 'reset',
        type: 'reset_peer',
        stream: 'upstream',
        toxicity: 0.5,
        attributes: { timeout: 500 },
      }),
  },
  {
    name: 'kafka-timeout',
    what: 'Kafka connections go silent and are closed after 3 s',
    apply: (t) =>
      toxic(t, 'kafka', {
        name: 'timeout',
        type: 'timeout',
        stream: 'upstream',
        toxicity: 1,
        attributes: { timeout: 3000 },
      }),
  },
  {
    name: 'redis-partition',
    what: 'Redis cut off: connections refused and closed',
    // A second for the connections to notice.
    degradedAfterMs: 1000,
    apply: (t) => cutOff(t, 'redis'),
  },
  {
    name: 'kafka-partition',
    what: 'Kafka cut off: connections refused and closed',
    // The API's last sample of the engines' offsets is good for API_LAG_MAX_AGE; then it must
    // stop answering as if the engines were keeping up.
    degradedAfterMs: API_LAG_MAX_AGE_MS + 1000,
    apply: (t) => cutOff(t, 'kafka'),
  },
];

/** When each phase's fault was in place: [from, to) in ms since the epoch. */
const phaseWindows: Array<{ phase: NetworkPhase; from: number; to: number }> = [];

/** Each phase in turn for a slot of the run, then as long healthy again. */
async function networkFaults(): Promise<void> {
  if (!toxiproxy) return;
  const slot = (SECONDS * 1000) / (2 * NETWORK_PHASES.length + 1);
  await pause(slot);
  for (const phase of NETWORK_PHASES) {
    await phase.apply(toxiproxy);
    const from = Date.now();
    say(`network: ${phase.name}: ${phase.what}`);
    await pause(slot);
    await toxiproxy.reset();
    phaseWindows.push({ phase, from, to: Date.now() });
    say(`network: ${phase.name} over`);
    await pause(slot);
  }
}

/** An answer of the API during the run: when it was asked and answered, and whether degraded. */
interface Read {
  readonly asked: number;
  readonly answered: number;
  readonly status: number;
  readonly degraded: boolean;
  readonly reasons: readonly string[];
}
const reads: Read[] = [];
let reading = true;

async function readAssurance(
  id: string,
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const r = await fetch(`${api?.base}/v1/identities/${encodeURIComponent(id)}/assurance`, {
    headers: { authorization: `Bearer ${API_TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  const body = r.headers.get('content-type')?.includes('json')
    ? ((await r.json()) as Record<string, unknown>)
    : undefined;
  return { status: r.status, body };
}

/** Four readers, each reading an identity's requirements every 100 ms while the faults run. */
async function readAll(): Promise<void> {
  if (!api) return;
  await Promise.all(
    Array.from({ length: 4 }, async (_, reader) => {
      for (let n = reader; reading; n += 4) {
        const asked = Date.now();
        const answer = await readAssurance(ids[(n * 7919) % ids.length] as string).catch(() => ({
          status: 0,
          body: undefined,
        }));
        const degraded = answer.body?.degraded === true;
        const reasons = (answer.body?.degradedReasons as string[] | undefined) ?? [];
        reads.push({ asked, answered: Date.now(), status: answer.status, degraded, reasons });
        await pause(100);
      }
    }),
  );
}

// ---- run, drain, compare ----------------------------------------------------------------------

const faultsStarted = Date.now();
const reader = readAll();
await Promise.all([produce(), killEngines(), killBrokers(), failRedis(), networkFaults()]);
reading = false;
await reader;
say(
  `produced ${acknowledged} acknowledged events (${sendRetries} batch retries) in ${((Date.now() - faultsStarted) / 1000).toFixed(1)} s; faults over`,
);

const wanted = (id: string) => [...(expected.get(id) as Map<string, Kind>).keys()].sort().join(',');
const seenIds = (d: Decision) =>
  d.signals
    .map((s) => String((s.attributes as Record<string, unknown>).signalId ?? ''))
    .filter((s) => s !== '')
    .sort()
    .join(',');
const last = new Map<string, Decision>();
let indexed = 0;
const settled = () => {
  for (; indexed < watcher.decisions.length; indexed++) {
    const d = watcher.decisions[indexed] as Decision;
    const prev = last.get(d.identityId);
    if (!prev || d.sequence >= prev.sequence) last.set(d.identityId, d);
  }
  return ids.filter((id) => {
    const d = last.get(id);
    return d === undefined || seenIds(d) !== wanted(id);
  });
};
/** A few of whatever failed, printed after the report. */
const examples: string[] = [];
const drainStart = Date.now();
let behind = settled();
while (behind.length > 0 && Date.now() - drainStart < DRAIN_TIMEOUT_MS) {
  await pause(1000);
  behind = settled();
  if ((Date.now() - drainStart) % 15_000 < 1000) say(`draining: ${behind.length} identities not settled yet`);
}
// Then until the engines have nothing left to read: a replay still running could publish a
// decision after the one that matched, and the last one is what apps act on.
let lagLeft = -1;
const lagDeadline = Date.now() + 120_000;
while (Date.now() < lagDeadline) {
  lagLeft = await groupLag(admin, config, topics).catch(() => -1);
  if (lagLeft === 0) break;
  await pause(1000);
}
behind = settled();
const drainS = (Date.now() - drainStart) / 1000;

// The API after the faults: every identity answered undegraded, with its last decision's tiers.
// Undegraded may take a moment (the API's own view of the engines' lag catches up).
let apiChecked = 0;
let apiDegraded = 0;
const apiMismatches: string[] = [];
if (api) {
  await until('the API answers undegraded again', 60_000, async () => {
    const a = await readAssurance(ids[0] as string);
    return a.status === 200 && a.body?.degraded === false;
  }).catch(() => {});
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
        const a = await readAssurance(id).catch(() => ({ status: 0, body: undefined }));
        apiChecked++;
        if (a.body?.degraded !== false) apiDegraded++;
        const d = last.get(id);
        if (a.status !== 200 || !d || !isDeepStrictEqual(a.body?.tiers, d.tiers)) {
          apiMismatches.push(id);
          if (apiMismatches.length <= 3)
            examples.push(
              `  API answer for ${id}: ${a.status} ${JSON.stringify(a.body?.tiers)}; last decision ${JSON.stringify(d?.tiers)}`,
            );
        }
      }
    }),
  );
}
// The reads of each phase; where the phase says so, every read well inside it must be degraded,
// and there must be such reads (else the check proved nothing).
const readsByPhase = phaseWindows.map(({ phase, from, to }) => {
  const during = reads.filter((r) => r.asked >= from && r.asked < to);
  const after = phase.degradedAfterMs;
  const bound = after === undefined ? [] : reads.filter((r) => r.asked >= from + after && r.answered <= to);
  const reasons = new Map<string, number>();
  for (const r of during) for (const why of r.reasons) reasons.set(why, (reasons.get(why) ?? 0) + 1);
  return {
    phase,
    reasons: [...reasons].map(([why, n]) => `${why} ${n}`).join(', '),
    during: during.length,
    degraded: during.filter((r) => r.degraded).length,
    bound: bound.length,
    lenient: bound.filter((r) => r.status !== 200 || !r.degraded).length,
  };
});
const lenientReads = readsByPhase.reduce((a, p) => a + p.lenient, 0);
const uncheckedPhases = readsByPhase.filter(
  (p) => p.phase.degradedAfterMs !== undefined && p.bound === 0,
).length;

// Order: each identity's decisions as they stand on its partition of the decisions topic.
// - A sequence repeated is a re-publish after a crash, which must be the same decision (readers
//   drop it by its sequence); the same sequence on another decision is a duplicate the sequence
//   cannot tell: duplicated-without-sequence.
// - A lower sequence after a higher one is a late write (an engine whose send outlived its
//   partition): readers drop it by its sequence too, but compaction keeps a topic's last record, so
//   the identity's last record must be its newest decision (stale last records fail the run).
let duplicatesWithSequence = 0;
let duplicatedWithoutSequence = 0;
let lateWrites = 0;
let staleLast = 0;
const byIdentity = new Map<string, Decision[]>();
for (const d of watcher.decisions) {
  const list = byIdentity.get(d.identityId) ?? [];
  list.push(d);
  byIdentity.set(d.identityId, list);
}
// A decision's substance as readers compare it (the engine's digest: tiers, signals' codes, scopes,
// channels and times, policy, bindings known); signal ids and the trigger are not part of it.
const substance = (d: Decision) => digestOf(d);
for (const list of byIdentity.values()) {
  for (let i = 1; i < list.length; i++) {
    const [a, b] = [list[i - 1] as Decision, list[i] as Decision];
    if (b.sequence > a.sequence) continue;
    if (b.sequence === a.sequence) {
      if (substance(a) === substance(b)) duplicatesWithSequence++;
      else {
        duplicatedWithoutSequence++;
        if (duplicatedWithoutSequence <= 3)
          examples.push(
            `  same sequence, other decision ${a.identityId} #${a.sequence}: ${materialOf(a)} then ${materialOf(b)}`,
          );
      }
      continue;
    }
    lateWrites++;
    if (lateWrites <= 3)
      examples.push(
        `  late write ${a.identityId}: #${a.sequence} (${a.trigger.eventId}, ${a.computedAt}) then #${b.sequence} (${b.trigger.eventId}, ${b.computedAt})`,
      );
  }
  const top = Math.max(...list.map((d) => d.sequence));
  if ((list.at(-1) as Decision).sequence !== top) staleLast++;
}
// The same state gives the same requirement: identities whose live signals are of the same kinds
// must have the same tiers.
const tiersByKinds = new Map<string, string>();
let inconsistent = 0;
for (const id of ids) {
  const d = last.get(id);
  if (!d) continue;
  const kinds = [...new Set((expected.get(id) as Map<string, Kind>).values())].sort().join(',');
  const tiers = JSON.stringify(d.tiers);
  const seen = tiersByKinds.get(kinds);
  if (seen === undefined) tiersByKinds.set(kinds, tiers);
  else if (seen !== tiers) inconsistent++;
}
const lost = behind.length;
const elapsed = (Date.now() - t0) / 1000;

// Where the lost identities' missing events went: did they reach the internal topic (the router's
// output), so the decider lost them, or not, so the router did?
const reachedInternal = new Set<string>();
const reachedInput = new Set<string>();
if (behind.length > 0) {
  const wantedEvents = new Set(
    ops.filter((o) => behind.includes(o.identity)).map((o) => String(o.value.eventId)),
  );
  await scanTopic(topics.identityEvents, wantedEvents, reachedInternal);
  await scanTopic(topics.compromiseSignal, wantedEvents, reachedInput);
}

say('stopping');
stopping = true;
await api?.stop();
await Promise.allSettled(engines.map((e) => e?.stop()));
if (toxiproxy) await toxiproxyDown(layout);
await watcher.stop();
await producer.close();
await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
await admin.disconnect();
const cleaner = createRedisCluster(cluster.endpoints.REDIS_CLUSTER_NODES, { kind: 'tool' });
await cleaner.connect();
const { keySpace, MetaStore } = await import('@assurance/redis');
await new MetaStore(cleaner, keySpace(config.REDIS_PREFIX)).wipe().catch(() => 0);
cleaner.disconnect();

const report = [
  `chaos run (${elapsed.toFixed(0)} s): ${acknowledged} acknowledged events, ${IDENTITIES} identities, ${ENGINES} engines`,
  `  faults: ${engineKills} engine SIGKILLs, ${brokerKills} leader-broker kills (restarted), ${redisFailovers} Redis primary failover(s); ${engineRestarts} engine exits restarted`,
  `  decisions on the topic: ${watcher.decisions.length}; drained ${drainS.toFixed(1)} s after the faults ended${lagLeft === 0 ? '' : ` (engines still ${lagLeft} messages behind)`}`,
  `  final decision equal to the oracle: ${IDENTITIES - lost} of ${IDENTITIES} identities`,
  `  re-published with their sequence (readers drop them): ${duplicatesWithSequence}`,
  `  late writes, a lower sequence after a higher one (readers drop them): ${lateWrites}; identities whose last record is not their newest: ${staleLast}`,
  `  same live signal kinds, different tiers: ${inconsistent}`,
  ...(NETWORK
    ? [
        `  network faults, each for ${((SECONDS * 1000) / (2 * NETWORK_PHASES.length + 1) / 1000).toFixed(1)} s with as long healthy after:`,
        ...readsByPhase.map(
          (p) =>
            `    ${p.phase.name} (${p.phase.what}): ${p.during} API reads, ${p.degraded} degraded${p.reasons ? ` (${p.reasons})` : ''}${p.phase.degradedAfterMs === undefined ? '' : `; ${p.bound} asked after its first ${(p.phase.degradedAfterMs / 1000).toFixed(1)} s, ${p.lenient} of them not degraded`}`,
        ),
        `  API after the faults: ${apiChecked - apiMismatches.length} of ${IDENTITIES} identities answered with their last decision's tiers, ${apiDegraded} degraded`,
      ]
    : []),
  `lost ${lost}, duplicated-without-sequence ${duplicatedWithoutSequence}`,
];
process.stdout.write(`${report.join('\n')}\n`);
for (const e of examples) process.stdout.write(`${e}\n`);
if (lost > 0) {
  for (const id of behind.slice(0, 5)) {
    const d = last.get(id);
    process.stdout.write(`  ${id}: wanted [${wanted(id)}], last decision [${d ? seenIds(d) : 'none'}]\n`);
  }
}
if (LOG_DIR) {
  mkdirSync(LOG_DIR, { recursive: true });
  for (const e of [...dead, ...engines])
    if (e) writeFileSync(path.join(LOG_DIR, `engine-${e.pid}.log`), e.output.join(''));
  const lines = [];
  for (const id of behind.slice(0, 5)) {
    lines.push(`${id} wanted ${wanted(id)}`);
    for (const o of ops.filter((x) => x.identity === id))
      lines.push(
        `  event ${String(o.value.eventId)} ${String(o.value.op)} ${String(o.value.signalId)}: ${reachedInput.has(String(o.value.eventId)) ? 'on the input topic' : 'NOT on the input topic'}, ${reachedInternal.has(String(o.value.eventId)) ? 'on the internal topic' : 'NOT on the internal topic'}`,
      );
    for (const d of byIdentity.get(id) ?? [])
      lines.push(`  #${d.sequence} ${d.computedAt} ${d.trigger.eventId} [${seenIds(d)}]`);
  }
  writeFileSync(path.join(LOG_DIR, 'lost.txt'), `${lines.join('\n')}\n`);
  if (api) {
    writeFileSync(path.join(LOG_DIR, 'api.log'), api.output.join(''));
    const windows = phaseWindows.map((w) => ({ phase: w.phase.name, from: w.from, to: w.to }));
    writeFileSync(
      path.join(LOG_DIR, 'reads.jsonl'),
      `${[...windows, ...reads].map((r) => JSON.stringify(r)).join('\n')}\n`,
    );
  }
  writeFileSync(
    path.join(LOG_DIR, 'events.jsonl'),
    `${ops
      .filter((o) => behind.slice(0, 5).includes(o.identity))
      .map((o) => JSON.stringify(o.value))
      .join('\n')}\n`,
  );
}
const networkFailed =
  NETWORK &&
  (lenientReads > 0 ||
    uncheckedPhases > 0 ||
    apiMismatches.length > 0 ||
    apiDegraded > 0 ||
    phaseWindows.length !== NETWORK_PHASES.length);
const failed =
  lost > 0 ||
  duplicatedWithoutSequence > 0 ||
  staleLast > 0 ||
  inconsistent > 0 ||
  lagLeft !== 0 ||
  networkFailed;
if (opts['keep-logs'] || failed) {
  for (const e of [...dead, ...engines]) {
    const tail = e?.output.join('').trim().split('\n').slice(-5).join('\n    ');
    if (tail) process.stdout.write(`  engine ${e?.pid}:\n    ${tail}\n`);
  }
  const apiTail = api?.output.join('').trim().split('\n').slice(-5).join('\n    ');
  if (apiTail) process.stdout.write(`  API:\n    ${apiTail}\n`);
}
process.exit(failed ? 1 : 0);
