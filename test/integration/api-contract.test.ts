import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  ActionAssuranceResponse,
  AssuranceResponse,
  Health,
  OPENAPI_FILE,
  Readiness,
  SignalsResponse,
  VerifyResponse,
} from '@assurance/api';
import { evaluate, loadPolicyFile } from '@assurance/policy';
import { assertDocumented, assertProblem, type OpenApiDocument } from '../api/contract.ts';
import { startTestApi, type TestApi, TOKENS } from '../api/support.ts';
import { envelope, startPipeline } from '../src/pipeline.ts';

/**
 * Contract tests: live responses of a real API (real Redis, Kafka, registry, engine) parsed with
 * the zod schemas the OpenAPI document is generated from, and each route/method/status checked
 * against the served document.
 */

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: TestApi;
let doc: OpenApiDocument;
const policy = loadPolicyFile();
const ASSURANCE = '/v1/identities/{id}/assurance';
const SIGNALS = '/v1/identities/{id}/signals';
const VERIFY = '/v1/assurance/verify';

before(async () => {
  p = await startPipeline();
  api = await startTestApi(p.config);
  const res = await api.call('GET', '/openapi.json', { token: null });
  assert.equal(res.status, 200);
  doc = res.body as OpenApiDocument;
});
after(async () => {
  await api?.stop();
  await p?.stop();
});

const uid = (base: string) => `${base}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

test('the served document is the committed services/api/openapi.json, OpenAPI 3.1', async () => {
  const committed = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as Record<string, unknown>;
  const served = (await api.call('GET', '/openapi.json', { token: null })).body;
  assert.deepEqual(served, committed);
  assert.equal(committed.openapi, '3.1.1');
  assert.equal(committed.jsonSchemaDialect, 'https://json-schema.org/draft/2020-12/schema');
});

describe('GET /v1/identities/{id}/assurance', () => {
  test('an identity the engine has not seen gets the policy baseline with sequence 0', async () => {
    const id = uid('nobody');
    const res = await api.call('GET', `/v1/identities/${id}/assurance`);
    assertDocumented(doc, 'GET', ASSURANCE, res);
    const body = AssuranceResponse.parse(res.body);
    assert.equal(body.identityId, id);
    assert.equal(body.sequence, 0);
    assert.equal(body.degraded, false);
    assert.deepEqual(body.degradedReasons, []);
    assert.equal(body.policyDigest, policy.digest);
    const baseline = evaluate(
      policy,
      { identityId: id, tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
      new Date(body.computedAt),
    );
    assert.deepEqual(body.tiers, baseline.tiers);
    assert.equal(body.tiers.low.outcome, 'allow');
    assert.equal(body.tiers.critical.requirePhishingResistant, true);
  });

  test('?action= answers with the action tier and requirement; an unknown action is 400 listing the known ones', async () => {
    const id = uid('nobody');
    const res = await api.call('GET', `/v1/identities/${id}/assurance?action=payout.change`);
    assertDocumented(doc, 'GET', ASSURANCE, res);
    const body = ActionAssuranceResponse.parse(res.body);
    assert.equal(body.action, 'payout.change');
    assert.equal(body.tier, 'high');
    assert.ok(!body.requirement.acceptableAuthenticators.includes('sms_otp'));
    const unknown = await api.call('GET', `/v1/identities/${id}/assurance?action=rocket.launch`);
    assertDocumented(doc, 'GET', ASSURANCE, unknown);
    const problem = assertProblem(unknown, 400, 'unknown-action');
    assert.ok((problem.knownActions as string[]).includes('payout.change'));
    assert.match(problem.detail, /rocket\.launch/);
    const verify = await api.call('POST', '/v1/assurance/verify', {
      json: { identityId: id, action: 'rocket.launch', completed: { authenticator: 'security_key' } },
    });
    assertProblem(verify, 400, 'unknown-action');
  });

  test('an identity the engine decided gets its state evaluated now: that sequence, those tiers', async () => {
    const id = uid('bob');
    await p.producer.send(p.topics.channelBinding, id, {
      ...envelope(-60_000),
      identityId: id,
      op: 'bound',
      channel: { type: 'phone', value: '+49 151 1234 5678' },
      uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
    });
    const decision = await p.watcher.waitFor(id, () => true);
    const body = AssuranceResponse.parse((await api.call('GET', `/v1/identities/${id}/assurance`)).body);
    assert.equal(body.sequence, decision.sequence);
    assert.deepEqual(body.tiers, decision.tiers);
    assert.equal(body.riskLevel, decision.riskLevel);
    assert.ok(body.computedAt >= decision.computedAt, 'evaluated at the time of the request');
    assert.equal(body.degraded, false);
  });

  test('an identity id with reserved characters round-trips URL-encoded', async () => {
    const id = 'tenant/1:user 42';
    const body = AssuranceResponse.parse(
      (await api.call('GET', `/v1/identities/${encodeURIComponent(id)}/assurance`)).body,
    );
    assert.equal(body.identityId, id);
  });
});

describe('POST /v1/assurance/verify', () => {
  const now = () => new Date().toISOString();

  test('a fresh security key satisfies a high-tier action', async () => {
    const res = await api.call('POST', '/v1/assurance/verify', {
      json: {
        identityId: uid('v'),
        action: 'payout.change',
        completed: { authenticator: 'security_key', authenticatedAt: now() },
      },
    });
    assertDocumented(doc, 'POST', VERIFY, res);
    const body = VerifyResponse.parse(res.body);
    assert.equal(body.satisfied, true);
    assert.deepEqual(body.missing, []);
    assert.equal(body.tier, 'high');
    assert.equal(body.degraded, false);
  });

  test('an SMS code does not satisfy a high-tier action; a stale one needs re-authentication', async () => {
    const sms = VerifyResponse.parse(
      (
        await api.call('POST', '/v1/assurance/verify', {
          json: { identityId: uid('v'), action: 'password.reset', completed: { authenticator: 'sms_otp' } },
        })
      ).body,
    );
    assert.equal(sms.satisfied, false);
    assert.deepEqual(sms.missing, ['authenticator_not_acceptable', 'reauthentication_required']);

    const old = new Date(Date.now() - 3_600_000).toISOString();
    const totp = VerifyResponse.parse(
      (
        await api.call('POST', '/v1/assurance/verify', {
          json: {
            identityId: uid('v'),
            action: 'mfa.reset',
            completed: { authenticator: 'totp', authenticatedAt: old },
          },
        })
      ).body,
    );
    assert.equal(totp.tier, 'critical');
    assert.deepEqual(totp.missing, [
      'authenticator_not_acceptable',
      'phishing_resistant_required',
      'reauthentication_required',
    ]);
  });

  test('a recovery method the tier does not allow is reported missing', async () => {
    const body = VerifyResponse.parse(
      (
        await api.call('POST', '/v1/assurance/verify', {
          json: {
            identityId: uid('v'),
            action: 'account.recovery.privileged',
            completed: {
              authenticator: 'passkey_device_bound',
              authenticatedAt: now(),
              recoveryMethod: 'sms_code',
            },
          },
        })
      ).body,
    );
    assert.equal(body.satisfied, false);
    assert.deepEqual(body.missing, ['recovery_method_not_allowed']);
  });
});

test('GET /v1/identities/{id}/signals explains bindings as type, hashed ref and uses', async () => {
  const id = uid('carol');
  await p.producer.send(p.topics.channelBinding, id, {
    ...envelope(-60_000),
    identityId: id,
    op: 'bound',
    channel: { type: 'email', value: 'Carol@Example.com' },
    uses: { authenticators: ['email_otp'], recovery: ['email_link'] },
  });
  await p.watcher.waitFor(id, (d) => d.bindingsKnown);
  const res = await api.call('GET', `/v1/identities/${id}/signals`);
  assertDocumented(doc, 'GET', SIGNALS, res);
  const body = SignalsResponse.parse(res.body);
  assert.equal(body.bindingsKnown, true);
  assert.deepEqual(body.signals, []);
  assert.equal(body.bindings.length, 1);
  assert.equal(body.bindings[0]?.channelType, 'email');
  assert.match(body.bindings[0]?.channelRef ?? '', /^[0-9a-f]{32}$/);
  assert.deepEqual(body.bindings[0]?.uses, { authenticators: ['email_otp'], recovery: ['email_link'] });
  assert.ok(!res.text.toLowerCase().includes('carol@example.com'), 'channel values never leave Redis');
});

describe('problem details', () => {
  test('unknown routes are 404 problems; a known one asked with another method is 405 with Allow', async () => {
    assertProblem(await api.call('GET', '/v2/nothing'), 404, 'not-found');
    const wrong = await api.call('DELETE', '/v1/assurance/verify');
    assertProblem(wrong, 405, 'method-not-allowed');
    assert.equal(wrong.headers.get('allow'), 'POST');
    const param = await api.call('PUT', '/v1/identities/someone/assurance');
    assertProblem(param, 405, 'method-not-allowed');
    assert.equal(param.headers.get('allow'), 'GET, HEAD');
  });

  test('bad params and queries are 400 with JSON pointers', async () => {
    const long = await api.call('GET', `/v1/identities/${'x'.repeat(201)}/assurance`);
    assertDocumented(doc, 'GET', ASSURANCE, long);
    const p1 = assertProblem(long, 400, 'validation-failed');
    assert.deepEqual(p1.errors, [
      { location: 'params', pointer: '/id', detail: p1.errors?.[0]?.detail ?? '' },
    ]);
    const q = assertProblem(
      await api.call('GET', '/v1/identities/x/assurance?action=Not%20An%20Action'),
      400,
      'validation-failed',
    );
    assert.equal(q.errors?.[0]?.location, 'query');
    assert.equal(q.errors?.[0]?.pointer, '/action');
  });

  test('bad bodies are 400 with the zod issue paths as JSON pointers', async () => {
    const res = await api.call('POST', '/v1/assurance/verify', {
      json: {
        identityId: 'x',
        action: 'payout.change',
        completed: { authenticator: 'carrier_pigeon' },
        extra: 1,
      },
    });
    assertDocumented(doc, 'POST', VERIFY, res);
    const problem = assertProblem(res, 400, 'validation-failed');
    const pointers = (problem.errors ?? []).map((e) => `${e.location}:${e.pointer}`).sort();
    assert.deepEqual(pointers, ['body:', 'body:/completed/authenticator']);
  });

  test('malformed JSON is 400, a non-JSON content type 415', async () => {
    const bad = await api.call('POST', '/v1/assurance/verify', {
      rawBody: '{"identityId":',
      headers: { 'content-type': 'application/json' },
    });
    assertDocumented(doc, 'POST', VERIFY, bad);
    assertProblem(bad, 400, 'invalid-json');
    const text = await api.call('POST', '/v1/assurance/verify', {
      rawBody: 'identityId=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assertDocumented(doc, 'POST', VERIFY, text);
    assertProblem(text, 415, 'unsupported-media-type');
  });

  test('bodies over the limit are 413', async () => {
    const res = await api.call('POST', '/v1/assurance/verify', {
      json: {
        identityId: 'x',
        action: 'payout.change',
        completed: {},
        pad: 'x'.repeat(api.config.BODY_LIMIT),
      },
    });
    assertDocumented(doc, 'POST', VERIFY, res);
    assertProblem(res, 413, 'payload-too-large');
  });
});

test('/healthz, /readyz and /metrics need no token; metrics label route templates, not URLs', async () => {
  const health = await api.call('GET', '/healthz', { token: null });
  assertDocumented(doc, 'GET', '/healthz', health);
  Health.parse(health.body);
  const ready = await api.call('GET', '/readyz', { token: null });
  assertDocumented(doc, 'GET', '/readyz', ready);
  const readiness = Readiness.parse(ready.body);
  assert.equal(readiness.status, 'ready');
  // What each check saw (addresses, states) only for an operator's token.
  for (const c of Object.values(readiness.checks)) assert.equal(c.detail, 'ok');
  const asOperator = Readiness.parse((await api.call('GET', '/readyz', { token: TOKENS.ops })).body);
  assert.ok(
    Object.values(asOperator.checks).some((c) => c.detail !== 'ok'),
    JSON.stringify(asOperator.checks),
  );
  const asApp = Readiness.parse((await api.call('GET', '/readyz', { token: TOKENS.reader })).body);
  for (const c of Object.values(asApp.checks)) assert.equal(c.detail, 'ok', 'decisions:read is not ops:read');

  const id = uid('metrics-probe');
  await api.call('GET', `/v1/identities/${id}/assurance`);
  const metrics = await api.call('GET', '/metrics', { token: null });
  assertDocumented(doc, 'GET', '/metrics', metrics);
  assert.match(
    metrics.text,
    /assurance_api_http_request_duration_seconds_count\{method="GET",route="\/v1\/identities\/:id\/assurance",status="200"\} \d+/,
  );
  assert.match(
    metrics.text,
    /assurance_api_http_requests_total\{method="GET",route="unmatched",status="404"\}/,
  );
  assert.match(metrics.text, /assurance_api_engine_lag_messages\{stage="decider"\} \d+/);
  assert.ok(!metrics.text.includes(id), 'identity ids never become labels');
});
