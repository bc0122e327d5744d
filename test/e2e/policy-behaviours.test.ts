/**
 * The default policy's behaviours (docs/policy-behaviours.md), end to end: events on Kafka (JSON and
 * registry Avro), state in Redis, decisions read back from the decisions topic. Behaviours 10 and 11
 * (routing, dedupe, late events) live in test/integration/ingestion.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Decision } from '@assurance/schemas';
import { envelope, startPipeline } from '../src/pipeline.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
before(async () => {
  p = await startPipeline();
});
after(() => p.stop());

let counter = 0;
const fresh = (label: string) => `${label}-${Date.now().toString(36)}-${++counter}`;
const phoneFor = () => `+4477009${String(100000 + (Date.now() % 100000) + counter).slice(-5)}${counter % 10}`;
const excluded = (d: Decision, tier: keyof Decision['tiers'], a: string) =>
  d.tiers[tier].excludedAuthenticators.some((e) => e.authenticator === a);
const accepts = (d: Decision, tier: keyof Decision['tiers'], a: string) =>
  d.tiers[tier].acceptableAuthenticators.includes(a as never);

async function bind(
  identityId: string,
  channel: { type: string; value: string },
  authenticators: string[],
  recovery: string[] = [],
  extra: object = {},
) {
  await p.producer.send(
    p.topics.channelBinding,
    identityId,
    {
      ...envelope(-3_600_000),
      identityId,
      op: 'bound',
      channel,
      uses: { authenticators, recovery },
      ...extra,
    },
    counter % 2 === 0 ? 'avro' : 'json',
  );
}

/** An identity with a phone (SMS), a mailbox (email codes/links) and an old laptop (TOTP, push). */
async function enrolled(
  label: string,
  more: (id: string) => Promise<void> = async () => {},
  alsoReady: (d: Decision) => boolean = () => true,
) {
  const id = fresh(label);
  const phone = phoneFor();
  const mailbox = `${id}@example.org`;
  await bind(
    id,
    { type: 'phone', value: phone },
    ['sms_otp', 'voice_otp'],
    ['sms_code', 'helpdesk_verified_callback'],
  );
  await bind(id, { type: 'email', value: mailbox }, ['email_otp', 'email_link'], ['email_link']);
  await more(id);
  // Signals on other topics may overtake bindings still in flight: start once every binding landed.
  const ready = await p.watcher.waitFor(
    id,
    (d) =>
      d.bindingsKnown && d.tiers.medium.enrolledAcceptable?.includes('email_otp') === true && alsoReady(d),
  );
  return { id, phone, mailbox, ready };
}

const simSwap = (phone: string) =>
  p.producer.send(p.topics.simSwap, phone, {
    ...envelope(),
    phoneNumber: phone,
    swappedAt: new Date(Date.now() - 3_600_000).toISOString(),
    changeType: 'port_out',
  });
const forwardingRule = (mailbox: string) =>
  p.producer.send(
    p.topics.mailboxChange,
    mailbox,
    { ...envelope(), mailbox, change: 'forwarding_rule_added', external: true },
    'avro',
  );

describe('the default policy, end to end', () => {
  test('behaviour 1: no signals: low allows, medium any MFA, high no SMS/voice/email codes, critical phishing-resistant only', async () => {
    const { ready: d } = await enrolled('baseline');
    assert.equal(d.tiers.low.outcome, 'allow');
    assert.equal(d.tiers.medium.outcome, 'step_up');
    assert.ok(accepts(d, 'medium', 'sms_otp') && accepts(d, 'medium', 'email_otp'));
    for (const a of ['sms_otp', 'voice_otp', 'email_otp', 'email_link'])
      assert.ok(!accepts(d, 'high', a), `high accepts ${a}`);
    assert.ok(d.tiers.critical.requirePhishingResistant);
    assert.deepEqual([...d.tiers.critical.acceptableAuthenticators].sort(), [
      'passkey_device_bound',
      'passkey_synced',
      'security_key',
      'smart_card',
    ]);
    assert.equal(d.signals.length, 0);
    assert.equal(d.riskLevel, 'low');
  });

  test('behaviour 2: SIM swap: SMS/voice codes, SMS recovery and callback to that phone excluded; high and critical phishing-resistant', async () => {
    const { id, phone } = await enrolled('simswap');
    await simSwap(phone);
    const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'sim_swap'));
    for (const a of ['sms_otp', 'voice_otp']) assert.ok(excluded(d, 'medium', a) && !accepts(d, 'medium', a));
    const recoveryOut = d.tiers.medium.recovery.excluded.map((e) => e.method);
    assert.ok(recoveryOut.includes('sms_code') && recoveryOut.includes('helpdesk_verified_callback'));
    assert.ok(d.tiers.high.requirePhishingResistant && d.tiers.critical.requirePhishingResistant);
  });

  test('behaviour 3: tampered mailbox: email codes, links and email recovery excluded', async () => {
    const { id, mailbox } = await enrolled('mailbox');
    await forwardingRule(mailbox);
    const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'mailbox_tampered'));
    for (const a of ['email_otp', 'email_link'])
      assert.ok(excluded(d, 'medium', a) && !accepts(d, 'medium', a));
    assert.ok(d.tiers.medium.recovery.excluded.some((e) => e.method === 'email_link'));
  });

  test('behaviour 4: phone and mailbox tampered: recovery only by ID with liveness or in person; critical holds without phishing-resistant', async () => {
    const { id, phone, mailbox } = await enrolled('both');
    await simSwap(phone);
    await forwardingRule(mailbox);
    const d = await p.watcher.waitFor(id, (x) => x.signals.length === 2);
    for (const tier of ['high', 'critical'] as const) {
      assert.deepEqual([...d.tiers[tier].recovery.allowed].sort(), ['id_document_liveness', 'in_person']);
    }
    assert.equal(d.tiers.critical.outcome, 'hold');
    assert.deepEqual(d.tiers.critical.enrolledAcceptable, []);
  });

  test('behaviour 5: new device: push and TOTP on it excluded for high and critical', async () => {
    const { id } = await enrolled('newdevice', async (x) => {
      await bind(x, { type: 'sync_account', value: `${x}-keys` }, ['passkey_synced']);
    });
    await p.producer.send(p.topics.device, id, {
      ...envelope(),
      identityId: id,
      deviceId: `${id}-new-phone`,
      change: 'enrolled',
      authenticators: ['push', 'totp'],
    });
    const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'device_new'));
    for (const tier of ['high', 'critical'] as const) {
      assert.ok(
        excluded(d, tier, 'push') && excluded(d, tier, 'totp'),
        `${tier} still accepts the new device`,
      );
    }
  });

  test('behaviour 6: synced passkey recoverable through a tampered mailbox: excluded for critical, security keys still serve', async () => {
    const { id, mailbox } = await enrolled(
      'synced',
      async (x) => {
        await bind(x, { type: 'sync_account', value: `${x}-keychain` }, ['passkey_synced'], [], {
          recoverableVia: [{ type: 'email', value: `${x}@example.org` }],
        });
        await bind(x, { type: 'device', value: `${x}-yubikey` }, ['security_key']);
      },
      (d) =>
        ['passkey_synced', 'security_key'].every((a) =>
          d.tiers.critical.enrolledAcceptable?.includes(a as never),
        ),
    );
    await forwardingRule(mailbox);
    const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'mailbox_tampered'));
    assert.ok(excluded(d, 'critical', 'passkey_synced'));
    assert.ok(accepts(d, 'critical', 'security_key') && accepts(d, 'critical', 'passkey_device_bound'));
    assert.equal(d.tiers.critical.outcome, 'step_up');
    assert.deepEqual(d.tiers.critical.enrolledAcceptable, ['security_key']);
  });

  test('behaviour 7: MFA fatigue: five failed pushes in ten minutes exclude push and elevate risk', async () => {
    const { id } = await enrolled(
      'fatigue',
      async (x) => {
        await bind(x, { type: 'device', value: `${x}-laptop` }, ['push', 'totp']);
      },
      (d) => d.tiers.medium.enrolledAcceptable?.includes('push') === true,
    );
    for (let i = 0; i < 5; i++) {
      await p.producer.send(p.topics.login, id, {
        ...envelope(-60_000 + i * 1000),
        identityId: id,
        outcome: 'failure',
        authenticator: 'push',
      });
    }
    const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'mfa_fatigue'));
    assert.ok(excluded(d, 'medium', 'push'));
    assert.notEqual(d.riskLevel, 'low');
  });

  test('behaviour 8: SOC-confirmed takeover: medium and above hold, critical denies, recovery in person or ID with liveness, until cleared', async () => {
    const { id } = await enrolled('takeover');
    const signalId = fresh('sig');
    const subject = { type: 'identity', value: id };
    await p.producer.send(p.topics.compromiseSignal, `identity:${id}`, {
      ...envelope(),
      signalId,
      op: 'raise',
      subject,
      kind: 'account_takeover',
      severity: 'critical',
      raisedBy: 'soc:analyst',
    });
    const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'takeover_confirmed'));
    assert.equal(d.tiers.medium.outcome, 'hold');
    assert.equal(d.tiers.high.outcome, 'hold');
    assert.equal(d.tiers.critical.outcome, 'deny');
    assert.deepEqual([...d.tiers.high.recovery.allowed].sort(), ['id_document_liveness', 'in_person']);
    assert.equal(d.riskLevel, 'critical');

    await p.producer.send(p.topics.compromiseSignal, `identity:${id}`, {
      ...envelope(),
      signalId,
      op: 'clear',
      subject,
      raisedBy: 'soc:analyst',
    });
    const cleared = await p.watcher.waitFor(id, (x) => x.sequence > d.sequence);
    assert.equal(cleared.tiers.medium.outcome, 'step_up');
    assert.equal(cleared.tiers.critical.outcome, 'hold', 'no phishing-resistant authenticator enrolled');
  });

  test('behaviour 9: an expiring signal relaxes the decision with a new sequence and no further event', async () => {
    const { id } = await enrolled('expiry');
    await p.producer.send(p.topics.compromiseSignal, `identity:${id}`, {
      ...envelope(),
      signalId: fresh('sig'),
      op: 'raise',
      subject: { type: 'identity', value: id },
      kind: 'account_takeover',
      severity: 'high',
      expiresAt: new Date(Date.now() + 3000).toISOString(),
      raisedBy: 'soc:analyst',
    });
    const held = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'takeover_confirmed'));
    assert.equal(held.tiers.medium.outcome, 'hold');
    assert.ok(
      Date.parse(held.validUntil) <= Date.parse(held.signals[0]?.expiresAt ?? ''),
      'validUntil names the expiry',
    );
    const relaxed = await p.watcher.waitFor(id, (x) => x.sequence > held.sequence, 20_000);
    assert.equal(relaxed.signals.length, 0);
    assert.equal(relaxed.tiers.medium.outcome, 'step_up');
    assert.equal(relaxed.trigger.eventId.startsWith('expiry:'), true);
  });

  test('login-derived: a new country and network together with a new device raises login_anomaly', async () => {
    const { id } = await enrolled('anomaly');
    const login = (deviceId: string, country: string, asn: number, offsetMs: number) =>
      p.producer.send(p.topics.login, id, {
        ...envelope(offsetMs),
        identityId: id,
        outcome: 'success',
        authenticator: 'totp',
        deviceId,
        country,
        asn,
        ip: '192.0.2.10',
      });
    await login('home-laptop', 'FR', 3215, -120_000);
    await login('home-laptop', 'FR', 3215, -60_000);
    await login('unknown-phone', 'BR', 28573, 0);
    const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'login_anomaly'));
    assert.notEqual(d.riskLevel, 'low');
  });

  test('login-derived: repeated failures inside the window raise repeated_failures', async () => {
    const { id } = await enrolled('failures');
    for (let i = 0; i < 10; i++) {
      await p.producer.send(p.topics.login, id, {
        ...envelope(-30 * 60_000 + i * 60_000),
        identityId: id,
        outcome: 'failure',
        authenticator: 'password',
      });
    }
    await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'repeated_failures'));
  });
});
