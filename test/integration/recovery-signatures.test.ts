import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '@assurance/core';
import { createEngineMetrics, seedFromDecisions } from '@assurance/engine';
import { createAdmin, createKafka, createProducer, type ProducerPort, parseBrokers } from '@assurance/kafka';
import {
  defineScripts,
  EPOCH_SHIFT,
  keySpace,
  MetaStore,
  StateStore,
  toIdentityState,
} from '@assurance/redis';
import {
  DecisionSigner,
  DecisionVerifier,
  generateSigningKey,
  SIGNATURE_HEADER,
  TOPICS,
} from '@assurance/schemas';
import { Redis } from 'ioredis';
import { decisionFor, takeover } from '../../packages/client/src/test-support.ts';
import { endpoints, uniqueName, uniquePrefix } from '../src/harness.ts';

/*
 * A store rebuilt from the decisions topic (after Redis lost it) takes an identity's state and the
 * store's epoch only from decisions a trusted key signed. A forged decision can neither displace
 * the real one (a lenient forgery would relax the identity) nor raise the epoch; the signals of a
 * decision no trusted key signed are still raised, since signals only tighten.
 */

const logger = createLogger('test-recovery', process.env.TEST_LOG_LEVEL ?? 'warn');
const kafka = async () =>
  createKafka({ brokers: parseBrokers((await endpoints()).KAFKA_BROKERS), clientId: 'recovery', logger });
const engineKey = new DecisionSigner(generateSigningKey());
const oldKey = new DecisionSigner(generateSigningKey());
let topic: string;
let producer: ProducerPort;
let redis: Redis;

before(async () => {
  topic = `${uniqueName('t')}.assurance.decisions.v1`;
  const admin = await createAdmin(await kafka());
  await admin.ensureTopics([
    { name: topic, partitions: 1, configs: TOPICS['assurance.decisions.v1'].configs },
  ]);
  await admin.close();
  producer = await createProducer(await kafka());
  redis = new Redis((await endpoints()).REDIS_URL);
  defineScripts(redis);
});

after(async () => {
  await producer?.close();
  const admin = await createAdmin(await kafka());
  await admin.deleteTopics([topic]).catch(() => {});
  await admin.close();
  redis?.disconnect();
});

test('only trusted decisions rebuild an identity and the epoch; untrusted ones can only add signals', async () => {
  const real = uniqueName('real');
  const rotated = uniqueName('rotated');
  const send = (
    id: string,
    seq: number,
    signer: DecisionSigner | null,
    withTakeover: boolean,
    tenantId: string | null = null,
  ) => {
    const text = JSON.stringify({ ...decisionFor(id, seq, withTakeover ? [takeover()] : []), tenantId });
    return producer.send([
      {
        topic,
        key: id,
        value: text,
        headers: {
          'x-sequence': String(seq),
          ...(signer ? { [SIGNATURE_HEADER]: signer.sign(text, seq) } : {}),
        },
      },
    ]);
  };
  await send(real, 5, engineKey, true, 'acme');
  // A forgery: later, lenient, and from an epoch far above the real one.
  await send(real, 7 * EPOCH_SHIFT + 1, null, false, 'mallory');
  // A genuine decision under a key the engine was not told to trust any more.
  await send(rotated, 6, oldKey, true, 'acme');

  const keys = keySpace(uniquePrefix());
  const state = new StateStore(redis, keys, { keepMs: 86_400_000, stateTtlMs: 86_400_000 });
  const metrics = createEngineMetrics();
  const r = await seedFromDecisions({
    kafka: await kafka(),
    decisionsTopic: topic,
    groupIdPrefix: uniqueName('g'),
    state,
    meta: new MetaStore(redis, keys),
    prefix: keys.prefix,
    secretDigest: 'x',
    policyDigest: 'x',
    verifier: new DecisionVerifier([engineKey.publicJwk]),
    metrics,
    logger,
  });
  assert.equal(r.maxEpoch, 0, 'the forgery did not move the epoch');
  const now = Date.now();
  for (const id of [real, rotated]) {
    const record = await state.read(id, now);
    assert.ok(record, id);
    const s = toIdentityState(record, now);
    assert.ok(
      s.signals.some((x) => x.code === 'takeover_confirmed'),
      `${id} keeps its takeover`,
    );
  }
  assert.equal((await state.read(real, now))?.tenantId, 'acme', 'the tenant of the trusted decision');
  assert.equal((await state.read(rotated, now))?.tenantId ?? null, null, 'no tenant from an untrusted one');
  assert.match(await metrics.registry.metrics(), /assurance_unsigned_decisions_total 2/);
});
