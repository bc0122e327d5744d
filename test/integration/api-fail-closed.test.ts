import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ActionAssuranceResponse, AssuranceResponse, Readiness, VerifyResponse } from '@assurance/api';
import { evaluate, failClosedEvaluation, loadPolicyFile, strictestRequirement } from '@assurance/policy';
import { keySpace } from '@assurance/redis';
import type { Decision } from '@assurance/schemas';
import { TIERS } from '@assurance/schemas';
import { Redis } from 'ioredis';
import { assertDocumented, assertProblem, type OpenApiDocument } from '../api/contract.ts';
import { PrivateRedis, startTestApi, type TestApi } from '../api/support.ts';
import { uniqueName } from '../src/harness.ts';
import { startPipeline } from '../src/pipeline.ts';

/**
 * Fail closed: with Redis stopped, the engine lagging or its lag unknown, or a decision the engine
 * owes a re-decision for too long, answers stay 200 with `degraded: true` and the strictest
 * requirement for every tier. Redis is a private redis-server this test kills and restarts; the
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

/** A decision as the engine would store it, with the tiers and times a case needs. */
function storedDecision(id: string, over: Partial<Decision>): Decision {
  const now = new Date();
  const baseline = evaluate(
    policy,
    { identityId: id, tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
    now,
  );
  return {
    identityId: id,
    tenantId: null,
    sequence: 7,
    policyVersion: policy.version,
    policyDigest: policy.digest,
    computedAt: new Date(now.getTime() - 2 * 3_600_000).toISOString(),
    validUntil: new Date(now.getTime() + 3_600_000).toISOString(),
    riskLevel: baseline.riskLevel,
    tiers: baseline.tiers,
    signals: [],
    bindingsKnown: false,
    trigger: { eventId: 'e-1', topic: 'identity.login.v1', occurredAt: now.toISOString() },
    ...over,
  };
}

async function store(id: string, value: Decision | string): Promise<void> {
  const key = keySpace(api.config.REDIS_PREFIX).identity(id).decision;
  await writer.set(key, typeof value === 'string' ? value : JSON.stringify(value));
}

const read = async (id: string) =>
  AssuranceResponse.parse((await api.call('GET', `/v1/identities/${id}/assurance`)).body);
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
const strictTiers = () => failClosedEvaluation(policy, new Date()).tiers;

describe('decisions in Redis', () => {
  test('a decision within validUntil is served as stored', async () => {
    const id = uid('fresh');
    await store(id, storedDecision(id, { policyVersion: '9.9.9-stored' }));
    const body = await read(id);
    assert.equal(body.degraded, false);
    assert.equal(body.sequence, 7);
    assert.equal(body.policyVersion, '9.9.9-stored');
  });

  test('past validUntil with nothing owed: re-evaluated from the state, not degraded', async () => {
    const id = uid('quiet');
    await store(id, storedDecision(id, { validUntil: minutesAgo(10) }));
    const body = await read(id);
    assert.equal(body.degraded, false);
    assert.equal(body.sequence, 7);
    assert.ok(Date.parse(body.validUntil) > Date.now());
  });

  test('past validUntil with a re-decision owed: tolerated for MAX_DECISION_AGE, then decision_stale', async () => {
    const grace = uid('owed-recent');
    await store(
      grace,
      storedDecision(grace, { validUntil: new Date(Date.now() - 5000).toISOString(), tiers: strictTiers() }),
    );
    const within = await read(grace);
    assert.equal(within.degraded, false, 'within the grace period the state is re-evaluated');
    assert.equal(within.tiers.low.outcome, 'allow');

    const id = uid('owed-stale');
    await store(id, storedDecision(id, { validUntil: minutesAgo(10), tiers: strictTiers() }));
    const res = await api.call('GET', `/v1/identities/${id}/assurance`);
    assertDocumented(doc, 'GET', '/v1/identities/{id}/assurance', res);
    const body = AssuranceResponse.parse(res.body);
    assertStrictest(body, ['decision_stale']);
    assert.equal(body.sequence, 7);
  });

  test('an unreadable decision fails closed', async () => {
    const id = uid('garbled');
    await store(id, '{"identityId":');
    assertStrictest(await read(id), ['decision_unreadable']);
  });
});

test('Redis stopped: 200 with the strictest requirement, explain and readiness 503; back when Redis is', async () => {
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
