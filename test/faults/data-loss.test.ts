/**
 * Redis losing data, for real (docs/state.md, data loss): on a private stack, an engine process
 * takes generated events (the state property's generator, fixed seed) from Kafka; then Redis is
 * killed with `kill -9` and comes back (1) with its AOF (`everysec`), (2) with an older AOF, as
 * after a failover to a replica that was behind or a restore, and (3) with nothing at all, as with
 * AOF off. Each time the engine must notice, answer nothing from the damaged store, rebuild what
 * was lost from Kafka, and end with every identity's state equal to the model's; no decision's
 * sequence may go back; and an API reading the store answers degraded until an engine has
 * verified it.
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AssuranceResponse } from '@assurance/api';
import { createLogger } from '@assurance/core';
import type { EngineConfig } from '@assurance/engine';
import { EngineConfigSchema, materialOf } from '@assurance/engine';
import type { AdminPort } from '@assurance/kafka';
import { createAdmin, createKafka, parseBrokers, provision, RegistryCodec } from '@assurance/kafka';
import { loadPolicyFile } from '@assurance/policy';
import { defineScripts, epochOf, keySpace, MetaStore, StateStore, toIdentityState } from '@assurance/redis';
import type { Decision } from '@assurance/schemas';
import { topicNames } from '@assurance/schemas';
import { Redis } from 'ioredis';
import { startTestApi, type TestApi } from '../api/support.ts';
import { EngineProcess } from '../src/engine-process.ts';
import { uniqueName, uniquePrefix } from '../src/harness.ts';
import { DecisionWatcher, EventProducer, TEST_SIGNING_KEY } from '../src/pipeline.ts';
import { PrivateStack } from '../src/private-stack.ts';
import { refOf, STATE_SECRET, toMessage } from '../src/state-harness.ts';
import type { ModelEvent } from '../src/state-model.ts';
import { StateModel } from '../src/state-model.ts';
import { STATE_IDS, STATE_SKEW_MS, sampleEvents } from '../src/state-property.ts';
import { pollUntil } from '../src/wait.ts';

const stack = new PrivateStack('data-loss', 31_000);
const logger = createLogger('data-loss', process.env.TEST_LOG_LEVEL ?? 'error');
const policy = loadPolicyFile();
let config: EngineConfig;
let engine: EngineProcess;
let producer: EventProducer;
let watcher: DecisionWatcher;
let admin: AdminPort;
let redis: Redis;
let store: StateStore;
let meta: MetaStore;
let api: TestApi;
const sent: ModelEvent[] = [];
let seed = 7;
const counter = { n: 0, lastLogin: new Map<string, number>() };

before(async () => {
  const e = await stack.up();
  config = EngineConfigSchema.parse({
    ...e,
    CHANNEL_HASH_SECRET: STATE_SECRET,
    DECISION_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY),
    TOPIC_NAMESPACE: uniqueName('dl'),
    ENGINE_GROUP_ID: uniqueName('g'),
    REDIS_PREFIX: uniquePrefix(),
    INTERNAL_PARTITIONS: '3',
    RETRY_BACKOFF: '300ms',
    STORE_CHECK_INTERVAL: '500ms',
    CONSUMER_SESSION_TIMEOUT: '6s',
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
  });
  admin = await createAdmin(
    createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'dl-admin', logger }),
  );
  // Provision first (the engine does it too, idempotently) so the watchers find their topics.
  await provision({
    admin,
    codec: new RegistryCodec({ url: config.SCHEMA_REGISTRY_URL }),
    topics: topicNames(config.TOPIC_NAMESPACE),
    internalPartitions: config.INTERNAL_PARTITIONS,
  });
  engine = new EngineProcess(config);
  // This test stops and wipes one Redis server; a cluster's failover is the chaos run's.
  assert.ok(config.REDIS_URL, 'the data-loss test needs REDIS_URL (one server)');
  redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {}); // expected while the test has Redis down
  defineScripts(redis);
  const keys = keySpace(config.REDIS_PREFIX);
  store = new StateStore(redis, keys, { keepMs: config.LATE_EVENT_WINDOW, stateTtlMs: config.STATE_TTL });
  meta = new MetaStore(redis, keys);
  [producer, watcher] = await Promise.all([
    EventProducer.start(config, logger),
    DecisionWatcher.start(config, logger),
  ]);
  api = await startTestApi(config);
});

after(async () => {
  await engine?.kill();
  await api?.stop();
  await Promise.allSettled([watcher?.stop(), producer?.close(), admin?.close()]);
  redis?.disconnect();
  await stack.down();
});

/** Sends a fresh batch of generated events, in their order (Kafka keeps each key's). */
async function sendWave(): Promise<void> {
  seed += 1;
  const events = sampleEvents(seed, Date.now(), 3, counter);
  const topics = topicNames(config.TOPIC_NAMESPACE);
  for (const e of events) {
    const m = toMessage(e, topics);
    await producer.send(m.topic, m.key, m.value);
  }
  sent.push(...events);
}

/** The engine has consumed everything sent, nothing is left to replay, and it verified the store on this Redis. */
async function settled(timeoutMs = 90_000): Promise<void> {
  const topics = topicNames(config.TOPIC_NAMESPACE);
  const inputs = [
    topics.login,
    topics.device,
    topics.simSwap,
    topics.mailboxChange,
    topics.channelBinding,
    topics.compromiseSignal,
  ];
  await pollUntil(
    async () => {
      const groups = [
        { id: `${config.ENGINE_GROUP_ID}.router`, topics: inputs },
        { id: `${config.ENGINE_GROUP_ID}.decider`, topics: [topics.identityEvents] },
      ];
      for (const g of groups) {
        for (const p of await admin.positions(g.id, g.topics)) if (p.committed < p.end) return undefined;
      }
      const status = await meta.status().catch(() => undefined);
      if (!status || status.epoch === null || status.recovering > 0) return undefined;
      return status.verifiedRunId === (await meta.runId()) ? true : undefined;
    },
    timeoutMs,
    () => `the engine to settle; its output:\n${engine.output.slice(-30).join('')}`,
    200,
  );
}

/** Every identity's state in Redis is the model's, and no decision's sequence went back. */
async function assertAgreesWithModel(): Promise<void> {
  const now = Date.now();
  const model = new StateModel({
    policy,
    ref: refOf,
    stateTtlMs: config.STATE_TTL,
    keepMs: config.LATE_EVENT_WINDOW,
  });
  model.applyPhase(now, sent, STATE_SKEW_MS);
  for (const id of STATE_IDS) {
    const record = await store.read(id, now);
    const real = record
      ? toIdentityState(record, now)
      : { identityId: id, tenantId: null, bindingsKnown: false, bindings: [], signals: [] };
    const expected = model.stateOf(id, now);
    const view = (s: typeof real) => ({
      tenantId: s.tenantId,
      bindings: s.bindings,
      signals: s.signals.map((x) => ({
        code: x.code,
        scope: x.scope,
        ref: x.ref,
        since: x.since,
        expiresAt: x.expiresAt,
      })),
    });
    if (JSON.stringify(view(real)) !== JSON.stringify(view(expected)) && process.env.DL_DEBUG) {
      const refs = new Set(expected.signals.map((x) => x.ref).filter((r): r is string => r !== null));
      for (const ref of refs) {
        const k = keySpace(config.REDIS_PREFIX).channel(ref);
        process.stderr.write(
          `DEBUG channel ${ref} members ${JSON.stringify(await redis.hgetall(k.members))}\n`,
        );
        process.stderr.write(
          `DEBUG channel ${ref} signals ${JSON.stringify(await store.channelSignals(ref))}\n`,
        );
      }
      process.stderr.write(`DEBUG ${id} record ${JSON.stringify(record)}\n`);
      process.stderr.write(
        `DEBUG sent ${JSON.stringify(sent.filter((e) => JSON.stringify(e).includes(id) || e.kind === 'socRaise' || e.kind === 'socClear'))}\n`,
      );
    }
    assert.deepEqual(view(real), view(expected), `${id}'s state`);
  }
  for (const id of STATE_IDS) {
    const seen = watcher.forIdentity(id);
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1], seen[i]] as [Decision, Decision];
      assert.ok(
        b.sequence > a.sequence || (b.sequence === a.sequence && materialOf(a) === materialOf(b)),
        `${id}: sequence ${b.sequence} after ${a.sequence}`,
      );
    }
  }
}

const aofDir = () => path.join(stack.layout.redis.data, 'appendonlydir');

test('baseline: generated events through a real engine agree with the model', async () => {
  await sendWave();
  await settled();
  await assertAgreesWithModel();
});

test('kill -9 Redis (AOF everysec): the engine verifies it again, replays whatever it lost, and agrees', async () => {
  await sendWave();
  await stack.crash(PrivateStack.redis);
  await stack.start(PrivateStack.redis);
  await sendWave();
  await settled();
  await assertAgreesWithModel();
});

test('Redis back with an older AOF (a lagging replica, a restore): partitions replayed under a new epoch', async () => {
  await settled();
  const before = (await meta.fingerprint())?.epoch ?? 0;
  // Quiet, and past the AOF's one-second fsync: this copy is a consistent point in time.
  await new Promise((r) => setTimeout(r, 1500));
  const snapshot = `${aofDir()}-snapshot`;
  rmSync(snapshot, { recursive: true, force: true });
  cpSync(aofDir(), snapshot, { recursive: true });
  await sendWave();
  await settled();
  const lostAt = Date.now();
  await stack.crash(PrivateStack.redis);
  rmSync(aofDir(), { recursive: true, force: true });
  cpSync(snapshot, aofDir(), { recursive: true });
  await stack.start(PrivateStack.redis);
  await settled();
  const epoch = (await meta.fingerprint())?.epoch ?? 0;
  assert.ok(epoch > before, `a new epoch (${before} → ${epoch})`);
  assert.ok(engine.output.join('').includes('the store lost data'), 'the engine says what it found');
  await sendWave();
  await settled();
  await assertAgreesWithModel();
  // Decisions made after the loss carry the new epoch: they outrank everything published before it.
  const after = watcher.decisions.filter((d) => Date.parse(d.computedAt) > lostAt);
  assert.ok(after.length > 0, 'decisions were made after the loss');
  for (const d of after)
    assert.ok(epochOf(d.sequence) >= epoch, `${d.identityId} #${d.sequence} in epoch ${epochOf(d.sequence)}`);
});

test('kill -9 Redis with nothing kept (AOF off): answers are degraded until an engine rebuilt the store from Kafka', async () => {
  await settled();
  // No engine while Redis comes back empty: nothing may be answered from it.
  await engine.stop();
  await stack.crash(PrivateStack.redis);
  rmSync(stack.layout.redis.data, { recursive: true, force: true });
  await stack.start(PrivateStack.redis);
  await pollUntil(
    async () => {
      const res = await api.call('GET', `/v1/identities/${STATE_IDS[0]}/assurance`);
      const body = AssuranceResponse.safeParse(res.body);
      return body.success && body.data.degradedReasons.includes('store_lost') ? body.data : undefined;
    },
    30_000,
    () => 'the API to answer store_lost',
  );
  engine = new EngineProcess(config);
  await settled(120_000);
  assert.ok(engine.output.join('').includes('rebuilding it from Kafka'), 'the engine says it rebuilds');
  const body = AssuranceResponse.parse(
    (await api.call('GET', `/v1/identities/${STATE_IDS[0]}/assurance`)).body,
  );
  assert.deepEqual(
    body.degradedReasons.filter((r) => r.startsWith('store')),
    [],
  );
  await sendWave();
  await settled();
  await assertAgreesWithModel();
});
