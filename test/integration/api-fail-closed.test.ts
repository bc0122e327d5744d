import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ActionAssuranceResponse, AssuranceResponse, Readiness, VerifyResponse } from '@assurance/api';
import { evaluate, loadPolicyFile, strictestRequirement } from '@assurance/policy';
import {
  defineScripts,
  keySpace,
  MetaStore,
  STATE_FORMAT,
  StateStore,
  signalKey,
  toIdentityState,
} from '@assurance/redis';
import { TIERS } from '@assurance/schemas';
import { Redis } from 'ioredis';
import { assertDocumented, assertProblem, type OpenApiDocument } from '../api/contract.ts';
import { PrivateRedis, startTestApi, type TestApi } from '../api/support.ts';
import { uniqueName } from '../src/harness.ts';
import { startPipeline } from '../src/pipeline.ts';

/**
 * Fail closed: with Redis stopped, the store lost, unverified, recovering or decided with another
 * policy, a state that cannot be read, or the engine lagging or its lag unknown, answers stay 200
 * with `degraded: true` and the strictest requirement for every tier. Redis is a private redis-server this test kills and restarts; the
 * shared stack is never touched.
 */

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let redis: PrivateRedis;
let writer: Redis;
let api: TestApi;
let doc: OpenApiDocument;
const policy = loadPolicyFile();

before(async () => {
  p = await startPipeline();
  redis = await PrivateRedis.create();
  writer = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  defineScripts(writer);
  writer.on('error', () => {}); // expected while the test has Redis stopped
  api = await startTestApi({ ...p.config, REDIS_URL: redis.url });
  doc = (await api.call('GET', '/openapi.json', { token: null })).body as OpenApiDocument;
});
after(async () => {
  await api?.stop();
  writer?.disconnect();
  await redis?.destroy();
  await p?.stop();
});

const uid = (base: string) => `${base}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

function assertStrictest(body: AssuranceResponse, reasons: readonly string[]): void {
  assert.equal(body.degraded, true);
  assert.deepEqual([...body.degradedReasons].sort(), [...reasons].sort());
  assert.equal(body.riskLevel, 'critical');
  assert.equal(body.validUntil, body.computedAt, 'a fail-closed answer is not to be cached');
  for (const tier of TIERS) assert.deepEqual(body.tiers[tier], strictestRequirement(policy, tier), tier);
}

const meta = () => new MetaStore(writer, keySpace(api.config.REDIS_PREFIX));
const state = () =>
  new StateStore(writer, keySpace(api.config.REDIS_PREFIX), { keepMs: 86_400_000, stateTtlMs: 86_400_000 });

/** The store as an engine leaves it once verified: fingerprint, this policy, verified on this Redis process. */
async function verifiedStore(): Promise<void> {
  const m = meta();
  await writer.del(keySpace(api.config.REDIS_PREFIX).fingerprint, keySpace(api.config.REDIS_PREFIX).recovery);
  await m.initFingerprint({
    format: STATE_FORMAT,
    prefix: api.config.REDIS_PREFIX,
    secret: 'as-the-engine-wrote-it',
    policy: policy.digest,
    epoch: 3,
    createdAt: new Date().toISOString(),
  });
  await m.markVerified(await m.runId());
}

const read = async (id: string) =>
  AssuranceResponse.parse((await api.call('GET', `/v1/identities/${id}/assurance`)).body);
const PHONE = 'f'.repeat(32);

describe('the state in Redis', () => {
  test('no fingerprint (a lost or flushed store, another prefix or database): store_lost, never the baseline', async () => {
    await writer.del(keySpace(api.config.REDIS_PREFIX).fingerprint);
    assertStrictest(await read(uid('nobody')), ['store_lost']);
    const ready = assertProblem(await api.call('GET', '/readyz', { token: null }), 503, 'not-ready');
    assert.equal(Readiness.shape.checks.parse(ready.checks).store.ok, false);
  });

  test('verified: no state is the baseline; a state is evaluated now, with the last sequence', async () => {
    await verifiedStore();
    const fresh = await read(uid('fresh'));
    assert.equal(fresh.degraded, false);
    assert.equal(fresh.sequence, 0);
    assert.equal(fresh.tiers.low.outcome, 'allow');

    const id = uid('swapped');
    const now = Date.now();
    await state().apply(
      id,
      {
        mutations: [
          { t: 'b', ref: PHONE, at: now - 60_000, type: 'phone', auth: 2, rec: 0, bat: now - 60_000 },
          {
            t: 'r',
            k: signalKey('sim_swap', 'phone', PHONE),
            code: 'sim_swap',
            scope: 'phone',
            ref: PHONE,
            since: now - 1000,
            exp: now + 3_600_000,
            ev: 'e',
            at: now - 1000,
            attrs: {},
          },
        ],
      },
      now,
    );
    await state().commit(id, 0, 3 * 2 ** 32 + 1, 'digest', now + 60_000);
    const body = await read(id);
    assert.equal(body.degraded, false);
    assert.equal(body.sequence, 3 * 2 ** 32 + 1);
    const record = await state().read(id, Date.now());
    const expected = evaluate(
      policy,
      toIdentityState(record as NonNullable<typeof record>, Date.now()),
      new Date(),
    );
    assert.equal(body.riskLevel, expected.riskLevel);
    assert.notEqual(body.riskLevel, 'low');
    assert.equal((await api.call('GET', '/readyz', { token: null })).status, 200);
  });

  test('a signal past its expiry is not served, even before the engine re-decides', async () => {
    await verifiedStore();
    const id = uid('expired');
    const now = Date.now();
    await state().apply(
      id,
      {
        mutations: [
          {
            t: 'r',
            k: signalKey('mfa_fatigue', 'identity', null),
            code: 'mfa_fatigue',
            scope: 'identity',
            ref: null,
            since: now - 7200_000,
            exp: now - 1,
            ev: 'e',
            at: now - 7200_000,
            attrs: {},
          },
        ],
      },
      now - 7200_000,
    );
    const body = await read(id);
    assert.equal(body.degraded, false);
    assert.equal(
      body.riskLevel,
      evaluate(
        policy,
        { identityId: id, tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
        new Date(),
      ).riskLevel,
    );
  });

  test('not verified since Redis started, recovering, or decided with another policy: degraded, each named', async () => {
    await verifiedStore();
    const id = uid('trust');
    await writer.hset(keySpace(api.config.REDIS_PREFIX).fingerprint, 'verified', 'another-redis-process');
    assertStrictest(await read(id), ['store_unverified']);
    await verifiedStore();
    await meta().markRecovery([{ stage: 'router', topic: 't', partition: 0, offset: '10' }]);
    assertStrictest(await read(id), ['store_recovering']);
    await verifiedStore();
    await meta().setPolicy('another-policy-digest');
    assertStrictest(await read(id), ['policy_mismatch']);
    await verifiedStore();
    assert.equal((await read(id)).degraded, false);
  });

  test('an unreadable state, or one that names another identity, fails closed', async () => {
    await verifiedStore();
    const garbled = uid('garbled');
    await writer.set(keySpace(api.config.REDIS_PREFIX).identity(garbled), Buffer.from([0xc1, 0x00, 0x17]));
    assertStrictest(await read(garbled), ['state_unreadable']);
    const owner = uid('owner');
    const thief = uid('thief');
    await state().apply(owner, { mutations: [], tenant: { id: 'acme', at: Date.now() } }, Date.now());
    await writer.copy(
      keySpace(api.config.REDIS_PREFIX).identity(owner),
      keySpace(api.config.REDIS_PREFIX).identity(thief),
    );
    assertStrictest(await read(thief), ['state_unreadable']);
  });

  test('a FLUSHALL between two reads: the next answer is store_lost, not the baseline', async () => {
    await verifiedStore();
    const id = uid('flushed');
    assert.equal((await read(id)).degraded, false);
    await writer.flushall();
    assertStrictest(await read(id), ['store_lost']);
  });
});

test('Redis stopped: 200 with the strictest requirement, explain and readiness 503; back, unverified, when Redis is', async () => {
  await verifiedStore();
  const id = uid('outage');
  assert.equal((await read(id)).degraded, false);

  await redis.stop();
  const res = await api.call('GET', `/v1/identities/${id}/assurance`);
  assertDocumented(doc, 'GET', '/v1/identities/{id}/assurance', res);
  const body = AssuranceResponse.parse(res.body);
  assertStrictest(body, ['redis_unavailable']);
  assert.equal(body.sequence, 0);

  const one = ActionAssuranceResponse.parse(
    (await api.call('GET', `/v1/identities/${id}/assurance?action=profile.view`)).body,
  );
  assert.equal(one.degraded, true);
  assert.equal(one.requirement.outcome, 'hold', 'even a low-tier action is held');

  const verdict = VerifyResponse.parse(
    (
      await api.call('POST', '/v1/assurance/verify', {
        json: {
          identityId: id,
          action: 'profile.view',
          completed: {
            authenticator: 'smart_card',
            liveness: true,
            verifiedCallback: true,
            authenticatedAt: new Date().toISOString(),
          },
        },
      })
    ).body,
  );
  assert.equal(verdict.satisfied, false);
  assert.deepEqual(verdict.missing, ['action_on_hold']);
  assert.deepEqual(verdict.degradedReasons, ['redis_unavailable']);

  const explain = await api.call('GET', `/v1/identities/${id}/signals`);
  assertDocumented(doc, 'GET', '/v1/identities/{id}/signals', explain);
  assertProblem(explain, 503, 'redis-unavailable');

  const ready = await api.call('GET', '/readyz', { token: null });
  assertDocumented(doc, 'GET', '/readyz', ready);
  const problem = assertProblem(ready, 503, 'not-ready');
  const checks = Readiness.shape.checks.parse(problem.checks);
  assert.equal(checks.redis.ok, false);
  assert.equal(checks.kafka.ok, true);

  const metrics = (await api.call('GET', '/metrics', { token: null })).text;
  assert.match(metrics, /assurance_api_degraded_answers_total\{reason="redis_unavailable"\} [1-9]/);

  // The method, not events.once: failed reconnect attempts emit 'error', which must not end the wait.
  const reconnected = new Promise((resolve) => api.runtime.redis.once('ready', resolve));
  await redis.start();
  await reconnected;
  // This Redis keeps nothing across a restart: the store is gone, and nothing says otherwise.
  assertStrictest(await read(id), ['store_lost']);
  await verifiedStore();
  assert.equal((await read(id)).degraded, false);
  assert.equal((await api.call('GET', '/readyz', { token: null })).status, 200);
});

test('an API started while Redis is down answers fail-closed, then recovers when Redis comes up', async () => {
  const late = await PrivateRedis.create(false);
  const early = await startTestApi({ ...p.config, REDIS_URL: late.url });
  try {
    const id = uid('late');
    assertStrictest(
      AssuranceResponse.parse((await early.call('GET', `/v1/identities/${id}/assurance`)).body),
      ['redis_unavailable'],
    );
    const connected = new Promise((resolve) => early.runtime.redis.once('ready', resolve));
    await late.start();
    await connected;
    const lateWriter = new Redis(late.url);
    defineScripts(lateWriter);
    const m = new MetaStore(lateWriter, keySpace(early.config.REDIS_PREFIX));
    await m.initFingerprint({
      format: STATE_FORMAT,
      prefix: early.config.REDIS_PREFIX,
      secret: 's',
      policy: policy.digest,
      epoch: 1,
      createdAt: new Date().toISOString(),
    });
    await m.markVerified(await m.runId());
    lateWriter.disconnect();
    assert.equal(
      AssuranceResponse.parse((await early.call('GET', `/v1/identities/${id}/assurance`)).body).degraded,
      false,
    );
  } finally {
    await early.stop();
    await late.destroy();
  }
});

describe('engine lag', () => {
  before(verifiedStore);
  test('lag over MAX_ENGINE_LAG fails every answer closed', async () => {
    // An API watching a consumer group that never consumes: every input message is lag.
    const idle = await startTestApi(p.config, { ENGINE_GROUP_ID: uniqueName('idle'), MAX_ENGINE_LAG: '0' });
    try {
      await p.producer.sendRaw(p.topics.login, 'lag-probe', '{"not":"an event"}');
      assert.ok(await idle.runtime.engine.refresh(), 'offsets sampled');
      const health = idle.runtime.engine.health();
      assert.ok(
        health.state !== 'unknown' && (health.lagByStage.router ?? 0) >= 1,
        `router lag measured: ${JSON.stringify(health)}`,
      );
      const body = AssuranceResponse.parse(
        (await idle.call('GET', `/v1/identities/${uid('lag')}/assurance`)).body,
      );
      assert.equal(body.degraded, true);
      assert.deepEqual(body.degradedReasons, ['engine_lagging']);
      assert.equal(body.tiers.low.outcome, 'hold');
      const ready = assertProblem(await idle.call('GET', '/readyz', { token: null }), 503, 'not-ready');
      assert.equal(Readiness.shape.checks.parse(ready.checks).engine.ok, false);
    } finally {
      await idle.stop();
    }
  });

  test('lag that cannot be measured (no current measurement) counts as lag', async () => {
    // Measurements stop succeeding (Kafka unreachable): the last one ages past LAG_MAX_AGE.
    let skewMs = 0;
    const blind = await startTestApi(p.config, {}, { lagClock: () => Date.now() + skewMs });
    try {
      const fresh = AssuranceResponse.parse(
        (await blind.call('GET', `/v1/identities/${uid('blind')}/assurance`)).body,
      );
      assert.equal(fresh.degraded, false);
      await blind.runtime.engine.stop();
      skewMs = blind.config.LAG_MAX_AGE + 1;
      const body = AssuranceResponse.parse(
        (await blind.call('GET', `/v1/identities/${uid('blind')}/assurance`)).body,
      );
      assert.equal(body.degraded, true);
      assert.deepEqual(body.degradedReasons, ['engine_lag_unknown']);
      const ready = assertProblem(await blind.call('GET', '/readyz', { token: null }), 503, 'not-ready');
      const checks = Readiness.shape.checks.parse(ready.checks);
      assert.equal(checks.kafka.ok, false);
      assert.equal(checks.engine.ok, false);
    } finally {
      await blind.stop();
    }
  });
});
