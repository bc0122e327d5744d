import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ActionAssuranceResponse,
  AssuranceResponse,
  SignalAccepted,
  SignalsResponse,
  VerifyResponse,
} from '@assurance/api';
import { channelRef } from '@assurance/schemas';
import { assertDocumented, assertProblem, type OpenApiDocument } from '../api/contract.ts';
import { startTestApi, type TestApi, TOKENS } from '../api/support.ts';
import { envelope, pushOnOldAndNewDevice, startPipeline } from '../src/pipeline.ts';

/**
 * The SOC path end to end: POST /v1/signals raises a takeover, the engine decides, and the HTTP
 * read path shows the lock-down (GET assurance, verify, explain); a clear relaxes it again.
 */

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: TestApi;
let doc: OpenApiDocument;

before(async () => {
  p = await startPipeline();
  api = await startTestApi(p.config);
  doc = (await api.call('GET', '/openapi.json', { token: null })).body as OpenApiDocument;
});
after(async () => {
  await api?.stop();
  await p?.stop();
});

const PHONE = '+33 6 12 34 56 78';

const raisedSoFar = async (): Promise<number> => {
  const text = (await api.call('GET', '/metrics', { token: null })).text;
  return Number(/^assurance_api_signals_submitted_total\{op="raise"\} (\d+)$/m.exec(text)?.[1] ?? 0);
};

test('a takeover raised over HTTP locks the identity down; a clear relaxes it', async () => {
  const id = `dave-${Date.now().toString(36)}`;
  const bind = (channel: object, uses: object) =>
    p.producer.send(p.topics.channelBinding, id, {
      ...envelope(-60_000),
      identityId: id,
      op: 'bound',
      channel,
      uses,
    });
  await bind({ type: 'phone', value: PHONE }, { authenticators: ['sms_otp'], recovery: ['sms_code'] });
  await bind({ type: 'device', value: 'laptop-7' }, { authenticators: ['passkey_device_bound'] });
  const bound = await p.watcher.waitFor(id, (d) => d.tiers.critical.enrolledAcceptable?.length === 1);

  const signalId = `case-${Date.now()}`;
  const raise = await api.call('POST', '/v1/signals', {
    json: {
      signalId,
      op: 'raise',
      subject: { type: 'identity', value: id },
      kind: 'account_takeover',
      severity: 'critical',
      reference: 'INC-4711',
    },
  });
  assertDocumented(doc, 'POST', '/v1/signals', raise);
  assert.equal(raise.status, 202, raise.text);
  const accepted = SignalAccepted.parse(raise.body);
  assert.match(accepted.eventId, /^api\.both\.[0-9a-f-]{36}$/, 'a new UUID in the namespace of the token');
  assert.equal(accepted.topic, p.topics.compromiseSignal);
  assert.ok((await raisedSoFar()) >= 1, 'acknowledged raises are counted');

  const locked = await p.watcher.waitFor(id, (d) => d.signals.some((s) => s.code === 'takeover_confirmed'));
  assert.ok(locked.sequence > bound.sequence);
  assert.deepEqual(
    locked.signals.find((s) => s.code === 'takeover_confirmed')?.sourceEventIds,
    [accepted.eventId],
    'the decision names the event the API produced',
  );

  const all = AssuranceResponse.parse((await api.call('GET', `/v1/identities/${id}/assurance`)).body);
  assert.equal(all.sequence, locked.sequence);
  assert.equal(all.riskLevel, 'critical');
  assert.equal(all.degraded, false);
  assert.equal(all.tiers.medium.outcome, 'hold');
  assert.equal(all.tiers.high.outcome, 'hold');
  assert.equal(all.tiers.critical.outcome, 'deny');
  assert.deepEqual(all.tiers.critical.recovery.allowed, ['id_document_liveness', 'in_person']);

  const payout = ActionAssuranceResponse.parse(
    (await api.call('GET', `/v1/identities/${id}/assurance?action=payout.change`)).body,
  );
  assert.equal(payout.requirement.outcome, 'hold');
  assert.ok(payout.requirement.reasons.includes('takeover_confirmed.identity'));

  const completed = { authenticator: 'passkey_device_bound', authenticatedAt: new Date().toISOString() };
  const held = VerifyResponse.parse(
    (
      await api.call('POST', '/v1/assurance/verify', {
        json: { identityId: id, action: 'payout.change', completed },
      })
    ).body,
  );
  assert.equal(held.satisfied, false);
  assert.deepEqual(held.missing, ['action_on_hold']);
  assert.equal(held.sequence, locked.sequence);
  const denied = VerifyResponse.parse(
    (
      await api.call('POST', '/v1/assurance/verify', {
        json: { identityId: id, action: 'secret.export', completed },
      })
    ).body,
  );
  assert.deepEqual(denied.missing, ['action_denied']);

  const explain = await api.call('GET', `/v1/identities/${id}/signals`);
  const why = SignalsResponse.parse(explain.body);
  assert.equal(why.sequence, locked.sequence);
  const takeover = why.signals.find((s) => s.code === 'takeover_confirmed');
  assert.ok(takeover, 'the takeover is a live signal');
  assert.equal(takeover.scope, 'identity');
  assert.equal(takeover.channelType, null);
  assert.equal(takeover.expiresAt, null, 'until the SOC clears it');
  assert.equal(takeover.attributes.raisedBy, 'both', 'the name of the token that raised it');
  assert.deepEqual(
    takeover.rules.map((r) => r.id),
    ['takeover-confirmed'],
  );
  assert.equal(takeover.rules[0]?.reasons[0]?.code, 'takeover_confirmed.identity');
  assert.match(takeover.rules[0]?.reasons[0]?.admin ?? '', /SOC confirmed account takeover/);
  assert.deepEqual(why.bindings.map((b) => b.channelType).sort(), ['device', 'phone']);
  assert.ok(!explain.text.includes('612345678') && !explain.text.includes('laptop-7'), 'no channel values');

  const clear = await api.call('POST', '/v1/signals', {
    json: { signalId, op: 'clear', subject: { type: 'identity', value: id } },
  });
  assert.equal(clear.status, 202, clear.text);
  const relaxed = await p.watcher.waitFor(id, (d) => d.sequence > locked.sequence && d.signals.length === 0);
  const ok = VerifyResponse.parse(
    (
      await api.call('POST', '/v1/assurance/verify', {
        json: { identityId: id, action: 'payout.change', completed },
      })
    ).body,
  );
  assert.equal(ok.satisfied, true, JSON.stringify(ok.missing));
  assert.equal(ok.sequence, relaxed.sequence);
});

test('a SIM swap on a phone shows up in explain with its rule and the phone only as a hash', async () => {
  const id = `erin-${Date.now().toString(36)}`;
  await p.producer.send(p.topics.channelBinding, id, {
    ...envelope(-60_000),
    identityId: id,
    op: 'bound',
    channel: { type: 'phone', value: '+44 7700 900123' },
    uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
  });
  await p.watcher.waitFor(id, () => true);
  const raise = await api.call('POST', '/v1/signals', {
    json: {
      signalId: `phone-${Date.now()}`,
      op: 'raise',
      // Spelt differently from the binding: the API normalizes it to the same E.164 key.
      subject: { type: 'phone', value: '+44 7700-900-123' },
      kind: 'sim_swap',
      severity: 'high',
    },
  });
  assert.equal(raise.status, 202, raise.text);
  await p.watcher.waitFor(id, (d) => d.signals.some((s) => s.code === 'channel_compromised'));
  const res = await api.call('GET', `/v1/identities/${id}/signals`);
  const why = SignalsResponse.parse(res.body);
  const signal = why.signals.find((s) => s.code === 'channel_compromised');
  assert.equal(signal?.channelType, 'phone');
  assert.equal(signal?.ref, why.bindings[0]?.channelRef, 'signal and binding name the same hashed channel');
  assert.ok(signal?.rules.some((r) => r.id === 'phone-compromised'));
  assert.ok(why.reasons.some((r) => r.code === 'channel_compromised.phone' && r.user.length > 0));
  assert.ok(!res.text.includes('7700'), 'the phone number never appears');
});

test('a raise the contract refuses is a 400 naming the field, and nothing is produced', async () => {
  const before = await raisedSoFar();
  const res = await api.call('POST', '/v1/signals', {
    json: {
      signalId: 'bad-1',
      op: 'raise',
      subject: { type: 'phone', value: '06 12 34 56 78' },
      kind: 'sim_swap',
      severity: 'high',
    },
  });
  assertDocumented(doc, 'POST', '/v1/signals', res);
  const problem = assertProblem(res, 400, 'validation-failed');
  assert.equal(problem.errors?.[0]?.pointer, '/subject/value');
  assert.match(problem.errors?.[0]?.detail ?? '', /international/);

  const expired = await api.call('POST', '/v1/signals', {
    json: {
      signalId: 'bad-2',
      op: 'raise',
      subject: { type: 'identity', value: 'x' },
      kind: 'credential_leak',
      severity: 'high',
      occurredAt: '2026-01-02T00:00:00Z',
      expiresAt: '2026-01-01T00:00:00Z',
    },
  });
  const p2 = assertProblem(expired, 400, 'validation-failed');
  assert.equal(p2.errors?.[0]?.pointer, '/expiresAt');
  assert.equal(await raisedSoFar(), before);
});

test('verify judges the device a step-up was completed on: push on the device known before counts, on the new one not', async () => {
  const id = `erin-${Date.now().toString(36)}`;
  const decided = await pushOnOldAndNewDevice(p, id);
  const old = {
    channelType: 'device',
    channelRef: channelRef(p.config.CHANNEL_HASH_SECRET, 'device', 'phone-old'),
  };
  assert.deepEqual(
    decided.tiers.high.excludedAuthenticators.find((x) => x.authenticator === 'push')?.acceptableOn,
    [old],
  );
  const verify = async (completed: object) => {
    const r = await api.call('POST', '/v1/assurance/verify', {
      json: { identityId: id, action: 'payout.change', completed },
    });
    assertDocumented(doc, 'POST', '/v1/assurance/verify', r);
    assert.equal(r.status, 200, r.text);
    return VerifyResponse.parse(r.body);
  };
  const at = new Date().toISOString();
  // The id as the app knows it, with the blanks the events' normalization trims.
  const onOld = await verify({
    authenticator: 'push',
    channel: { type: 'device', value: ' phone-old ' },
    authenticatedAt: at,
  });
  assert.deepEqual([onOld.satisfied, onOld.missing], [true, []]);
  assert.deepEqual(onOld.channel, old, 'the response names the binding it judged');
  const onNew = await verify({
    authenticator: 'push',
    channel: { type: 'device', value: 'phone-new' },
    authenticatedAt: at,
  });
  assert.deepEqual([onNew.satisfied, onNew.missing], [false, ['channel_not_acceptable']]);
  const unnamed = await verify({ authenticator: 'push', authenticatedAt: at });
  assert.deepEqual([unnamed.satisfied, unnamed.missing], [false, ['channel_required']]);
  const bad = await api.call('POST', '/v1/assurance/verify', {
    json: {
      identityId: id,
      action: 'payout.change',
      completed: { authenticator: 'push', channel: { type: 'device', value: '' } },
    },
  });
  assertProblem(bad, 400, 'validation-failed');
});

test('signals are accountable: the token names who, the API namespaces ids and bounds time, and clearing is its own right', async () => {
  const id = `frank-${Date.now().toString(36)}`;
  const raise = (json: Record<string, unknown>, token?: string) =>
    api.call('POST', '/v1/signals', {
      ...(token ? { token } : {}),
      json: {
        signalId: `acc-${id}`,
        op: 'raise',
        subject: { type: 'identity', value: id },
        kind: 'account_takeover',
        severity: 'critical',
        ...json,
      },
    });
  // Someone else's name: refused.
  const impersonated = await raise({ raisedBy: 'the-ciso' });
  assertProblem(impersonated, 400, 'validation-failed');
  // Dated ahead: a clear so dated would block every re-raise until then.
  const ahead = await raise({ occurredAt: new Date(Date.now() + 5 * 60_000).toISOString() });
  assertProblem(ahead, 400, 'validation-failed');
  // The caller's id lives in the token's namespace, so it cannot use up another source's.
  const accepted = await raise({ eventId: 'carrier-evt-1' }, TOKENS.writer);
  assert.equal(accepted.status, 202, accepted.text);
  assert.equal(SignalAccepted.parse(accepted.body).eventId, 'api.writer.carrier-evt-1');
  const held = await p.watcher.waitFor(id, (d) => d.signals.some((s) => s.code === 'takeover_confirmed'));
  const signal = held.signals.find((s) => s.code === 'takeover_confirmed');
  assert.equal(signal?.attributes.raisedBy, 'writer');
  assert.deepEqual(signal?.sourceEventIds, ['api.writer.carrier-evt-1']);

  const clear = { signalId: `acc-${id}`, op: 'clear', subject: { type: 'identity', value: id } };
  const byWriter = await api.call('POST', '/v1/signals', { token: TOKENS.writer, json: clear });
  assertDocumented(doc, 'POST', '/v1/signals', byWriter);
  assertProblem(byWriter, 403, 'forbidden');
  const byClearer = await api.call('POST', '/v1/signals', { token: TOKENS.clearer, json: clear });
  assert.equal(byClearer.status, 202, byClearer.text);
  const cleared = await p.watcher.waitFor(id, (d) => d.sequence > held.sequence && d.signals.length === 0);
  // The signal is gone; the decision (and its audit record) still say who cleared it.
  assert.equal(cleared.trigger.actor, 'clearer');
  assert.equal(held.trigger.actor, 'writer');
  // The SOC view of an identity is not for apps.
  assertProblem(
    await api.call('GET', `/v1/identities/${id}/signals`, { token: TOKENS.reader }),
    403,
    'forbidden',
  );
});

test('a token bound to a tenant reads and writes only about identities of that tenant', async () => {
  const ours = `acme-${Date.now().toString(36)}`;
  const theirs = `globex-${Date.now().toString(36)}`;
  for (const [id, tenantId] of [
    [ours, 'acme'],
    [theirs, 'globex'],
  ] as const) {
    await p.producer.send(p.topics.channelBinding, id, {
      ...envelope(-60_000),
      tenantId,
      identityId: id,
      op: 'bound',
      channel: { type: 'device', value: `${id}-laptop` },
      uses: { authenticators: ['passkey_device_bound'] },
    });
    await p.watcher.waitFor(id, (d) => d.tenantId === tenantId);
  }
  const as = (method: string, path: string, json?: unknown) =>
    api.call(method, path, { token: TOKENS.acme, ...(json === undefined ? {} : { json }) });
  assert.equal((await as('GET', `/v1/identities/${ours}/assurance`)).status, 200);
  assertProblem(await as('GET', `/v1/identities/${theirs}/assurance`), 403, 'forbidden');
  const verify = { action: 'payout.change', completed: {} };
  assertProblem(
    await as('POST', '/v1/assurance/verify', { identityId: theirs, ...verify }),
    403,
    'forbidden',
  );
  assertProblem(await as('GET', `/v1/identities/${theirs}/signals`), 403, 'forbidden');
  // An identity nobody has seen reveals nothing: the baseline.
  assert.equal((await as('GET', `/v1/identities/nobody-${Date.now().toString(36)}/assurance`)).status, 200);

  const raise = (subject: object) =>
    as('POST', '/v1/signals', {
      signalId: `t-${Date.now()}`,
      op: 'raise',
      subject,
      kind: 'account_takeover',
      severity: 'high',
    });
  assert.equal((await raise({ type: 'identity', value: ours })).status, 202);
  // Naming another tenant would move the identity there.
  const moved = await as('POST', '/v1/signals', {
    signalId: `t-move-${Date.now()}`,
    op: 'raise',
    subject: { type: 'identity', value: ours },
    kind: 'account_takeover',
    severity: 'high',
    tenantId: 'globex',
  });
  assertProblem(moved, 403, 'forbidden');
  assertProblem(await raise({ type: 'identity', value: theirs }), 403, 'forbidden');
  // A channel is shared across tenants: only an unbound token may mark one.
  assertProblem(await raise({ type: 'phone', value: '+33 6 98 76 54 32' }), 403, 'forbidden');
});
