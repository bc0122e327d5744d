/**
 * Reliability by breaking things for real, on a private native stack: SIGKILL the engine mid-batch,
 * restart Redis, crash the broker, stop the registry. After each fault the stream completes and, for
 * every identity, the decisions on the topic never go back: sequences only grow (a decision made
 * again after a crash keeps its sequence and its substance), and the last one holds every signal.
 * A sequence may be skipped: a decision recorded but not acknowledged when the engine died is
 * superseded by the next one, made from the state (docs/state.md).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { EngineConfig } from '@assurance/engine';
import { EngineConfigSchema, materialOf } from '@assurance/engine';
import { createAdmin, createKafka, parseBrokers, provision, RegistryCodec } from '@assurance/kafka';
import type { Decision } from '@assurance/schemas';
import { TOPICS, topicNames } from '@assurance/schemas';
import { EngineProcess } from '../src/engine-process.ts';
import { uniqueName, uniquePrefix } from '../src/harness.ts';
import {
  DecisionWatcher,
  EventProducer,
  envelope,
  TEST_SECRET,
  TEST_SIGNING_KEY,
  TopicCollector,
} from '../src/pipeline.ts';
import { PrivateStack } from '../src/private-stack.ts';

const IDENTITIES = 40;
const stack = new PrivateStack('faults', 29_000);
const logger = createLogger('faults', process.env.TEST_LOG_LEVEL ?? 'error');
let config: EngineConfig;
let engine: EngineProcess;
let producer: EventProducer;
let watcher: DecisionWatcher;
let dlq: TopicCollector;
const ids = Array.from({ length: IDENTITIES }, (_, i) => `fault-${Date.now().toString(36)}-${i}`);
let waves = 0;

before(async () => {
  const e = await stack.up();
  config = EngineConfigSchema.parse({
    ...e,
    CHANNEL_HASH_SECRET: TEST_SECRET,
    DECISION_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY),
    TOPIC_NAMESPACE: uniqueName('f'),
    ENGINE_GROUP_ID: uniqueName('g'),
    REDIS_PREFIX: uniquePrefix(),
    INTERNAL_PARTITIONS: '3',
    RETRY_BACKOFF: '300ms',
    SWEEP_INTERVAL: '500ms',
    SWEEP_LEASE: '5s',
    METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    // The killed engine's partitions move to the new one after this long.
    CONSUMER_SESSION_TIMEOUT: '8s',
  });
  // Provision first (the engine does it too, idempotently) so the watchers find their topics.
  const admin = await createAdmin(
    createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'faults', logger }),
  );
  await provision({
    admin,
    codec: new RegistryCodec({ url: config.SCHEMA_REGISTRY_URL }),
    topics: topicNames(config.TOPIC_NAMESPACE),
    internalPartitions: config.INTERNAL_PARTITIONS,
  });
  await admin.close();
  engine = new EngineProcess(config, { keep: 2000 });
  [producer, watcher] = await Promise.all([
    EventProducer.start(config, logger),
    DecisionWatcher.start(config, logger),
  ]);
  dlq = await TopicCollector.start(config, logger, topicNames(config.TOPIC_NAMESPACE).dlq);
});

after(async () => {
  await engine?.kill();
  await Promise.allSettled([watcher?.stop(), producer?.close(), dlq?.stop()]);
  await stack.down();
});

/** One SOC signal per identity, each with its own id: after wave n every identity has n signals. */
async function sendWave(): Promise<number> {
  waves += 1;
  const wave = waves;
  for (const id of ids) {
    await producer.send(
      producer.topics.compromiseSignal,
      `identity:${id}`,
      {
        ...envelope(),
        signalId: `${id}-w${wave}`,
        op: 'raise',
        subject: { type: 'identity', value: id },
        kind: 'credential_leak',
        severity: 'low',
        raisedBy: 'soc:faults',
      },
      'avro',
    );
  }
  return wave;
}

const latest = (id: string): Decision | undefined =>
  watcher
    .forIdentity(id)
    .reduce<Decision | undefined>((a, d) => (!a || d.sequence > a.sequence ? d : a), undefined);

/** kafkajs's reconnection attempts: while a broker is away they bury everything else. */
const RECONNECTING = /Connection error|Failed to connect to seed broker|Restarting the consumer/;

async function complete(wave: number, timeoutMs = 90_000): Promise<void> {
  for (const id of ids) {
    await watcher
      .waitFor(id, (d) => d.signals.length >= wave, timeoutMs)
      .catch((err: Error) => {
        const lines = engine.output.join('').split('\n').filter(Boolean);
        const telling = lines.filter((l) => !RECONNECTING.test(l));
        throw new Error(
          `${err.message}\nengine output (${lines.length - telling.length} reconnection lines left out; ids ${ids.filter((x) => (latest(x)?.signals.length ?? 0) < wave).length} of ${ids.length} incomplete):\n${telling.slice(-25).join('\n')}`,
        );
      });
  }
}

/**
 * No decision lost or reordered: in topic order each identity's sequences never decrease, a
 * sequence seen twice carries the same decision, and the last decision holds every wave's signal.
 */
function assertNoDecisionLost(): void {
  for (const id of ids) {
    const seen = watcher.forIdentity(id);
    const last = seen.at(-1);
    assert.ok(last, `no decision for ${id}`);
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1] as Decision, seen[i] as Decision];
      assert.ok(b.sequence >= a.sequence, `${id}: sequence ${b.sequence} after ${a.sequence}`);
      if (b.sequence === a.sequence)
        assert.equal(materialOf(b), materialOf(a), `${id}: two decisions under ${a.sequence}`);
    }
    assert.equal(last.sequence, latest(id)?.sequence);
    assert.equal(last.signals.length, waves, `${id} misses a signal`);
  }
}

test('baseline wave through the engine process', async () => {
  await complete(await sendWave());
  assertNoDecisionLost();
});

test('SIGKILL the engine mid-batch, start another: nothing lost, nothing reordered', async () => {
  const wave = await sendWave();
  // Kill as soon as the first decision of this wave is out: the rest of the batch is in flight.
  await watcher.waitFor(ids[0] as string, (d) => d.signals.length >= wave, 60_000);
  await engine.kill();
  engine = new EngineProcess(config, { keep: 2000 });
  await complete(wave);
  assertNoDecisionLost();
});

test('restart Redis mid-stream (AOF): the consumer pauses, redelivers, and completes', async () => {
  const wave = await sendWave();
  await stack.stop(PrivateStack.redis);
  await stack.start(PrivateStack.redis);
  await complete(wave);
  assertNoDecisionLost();
});

test('crash the broker (SIGKILL) and restart it: the stream completes', async () => {
  const wave = await sendWave();
  await stack.crash(PrivateStack.kafka);
  await stack.start(PrivateStack.kafka);
  await complete(wave, 120_000);
  assertNoDecisionLost();
});

test('registry stopped: cached schema ids keep working; an unknown id waits for the registry, never skipped', async () => {
  // A schema id the engine has never fetched: the same SIM-swap schema under a probe subject.
  const probeSubject = `${config.TOPIC_NAMESPACE}.probe-value`;
  const avro = { ...(TOPICS['identity.sim-swap.v1'].avro as object), doc: 'probe: same fields, new id' };
  const probeId = await producer.codec.register(probeSubject, avro);
  const phone = '+33699887766';
  const holder = `${ids[0]}-phone`;
  await producer.send(producer.topics.channelBinding, holder, {
    ...envelope(-60_000),
    identityId: holder,
    op: 'bound',
    channel: { type: 'phone', value: phone },
    uses: { authenticators: ['sms_otp'], recovery: [] },
  });
  await watcher.waitFor(holder, (d) => d.bindingsKnown);

  await stack.stop(PrivateStack.registry);
  const wave = await sendWave(); // Avro with ids the engine has cached
  await complete(wave);
  const swap = await producer.codec.registry.encode(probeId, {
    ...envelope(),
    phoneNumber: phone,
    swappedAt: new Date().toISOString(),
    changeType: 'sim_change',
  });
  await producer.sendRaw(producer.topics.simSwap, phone, swap);
  await stack.start(PrivateStack.registry);
  const d = await watcher.waitFor(holder, (x) => x.signals.some((s) => s.code === 'sim_swap'), 60_000);
  assert.ok(d.tiers.medium.excludedAuthenticators.some((e) => e.authenticator === 'sms_otp'));
  assert.equal(
    dlq.messages.filter((m) => m.key?.toString() === phone).length,
    0,
    'the message waited for the registry instead of being dead-lettered',
  );
  assertNoDecisionLost();
});

test('SIGTERM stops the engine cleanly (exit 0)', async () => {
  assert.equal(await engine.stop(), 0);
});
