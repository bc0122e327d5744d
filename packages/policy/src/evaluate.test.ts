import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseDocument } from 'yaml';
import {
  type IdentityState,
  TIERS,
  type Tier,
  type TierRequirement,
  TierRequirementSchema,
} from './contract.ts';
import { type Evaluation, evaluate } from './evaluate.ts';
import { strictestRequirement } from './fail-closed.ts';
import { defaultPolicyPath, loadPolicy, type Policy } from './load.ts';
import { at, bind, defaultPolicy, NOW, signal, state } from './test-support.ts';

const policy = defaultPolicy();

/** Evaluates and checks the result against the contract schema, so no test can pass on a malformed decision. */
function run(s: IdentityState, p: Policy = policy, now = NOW): Evaluation {
  const evaluation = evaluate(p, s, now);
  for (const tier of TIERS) TierRequirementSchema.parse(evaluation.tiers[tier]);
  return evaluation;
}
const excluded = (t: TierRequirement) => t.excludedAuthenticators.map((e) => e.authenticator);
const reasonsFor = (t: TierRequirement, a: string) =>
  t.excludedAuthenticators.find((e) => e.authenticator === a)?.reasons ?? [];
const PR = ['passkey_synced', 'passkey_device_bound', 'security_key', 'smart_card'];

describe('1. no signals: the baselines', () => {
  const e = run(state(undefined));
  it('low allows, medium any MFA, high no SMS/voice/email codes, critical phishing-resistant only', () => {
    assert.deepEqual(
      TIERS.map((t) => e.tiers[t].outcome),
      ['allow', 'step_up', 'step_up', 'step_up'],
    );
    assert.deepEqual(excluded(e.tiers.medium), ['password']);
    assert.deepEqual(excluded(e.tiers.high), ['password', 'sms_otp', 'voice_otp', 'email_otp', 'email_link']);
    assert.deepEqual(e.tiers.critical.acceptableAuthenticators, PR);
    assert.equal(e.tiers.critical.requirePhishingResistant, true);
    assert.deepEqual(reasonsFor(e.tiers.high, 'sms_otp'), ['baseline.not_acceptable']);
  });
  it('is low risk, valid for the staleness bound, with no reasons and no enrollment when bindings are unknown', () => {
    assert.equal(e.riskLevel, 'low');
    assert.equal(e.validUntil, at(1));
    assert.deepEqual(e.reasons, []);
    for (const tier of TIERS) assert.equal(e.tiers[tier].enrolledAcceptable, undefined);
  });
  it('carries acr values and maxAge from the tier', () => {
    assert.deepEqual(e.tiers.critical.acrValues, [
      'http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true',
    ]);
    assert.deepEqual(e.tiers.high.acrValues, ['http://idmanagement.gov/ns/assurance/aal/2']);
    assert.equal(e.tiers.critical.maxAge, 300);
  });
});

describe('2. SIM swap', () => {
  const phone = bind('phone:main', ['sms_otp', 'voice_otp'], ['sms_code', 'helpdesk_verified_callback']);
  const laptop = bind('device:laptop', ['passkey_device_bound', 'totp']);
  const swap = signal('sim_swap', 'phone:main', { since: at(-48), expiresAt: at(24 * 12) });
  const e = run(state([phone, laptop], [swap]));
  it('excludes SMS and voice codes, SMS recovery and verified callback to that phone in every tier', () => {
    for (const tier of TIERS) {
      assert.ok(excluded(e.tiers[tier]).includes('sms_otp'), tier);
      assert.ok(reasonsFor(e.tiers[tier], 'voice_otp').includes('sim_swap.phone_bound'), tier);
      assert.ok(!e.tiers[tier].recovery.allowed.includes('sms_code'), tier);
      assert.ok(!e.tiers[tier].recovery.allowed.includes('helpdesk_verified_callback'), tier);
    }
    assert.deepEqual(e.tiers.medium.acceptableAuthenticators.includes('email_otp'), true);
  });
  it('requires phishing-resistant for high and critical, with the PR acr value', () => {
    assert.equal(e.tiers.medium.requirePhishingResistant, false);
    assert.equal(e.tiers.high.requirePhishingResistant, true);
    assert.deepEqual(e.tiers.high.acceptableAuthenticators, PR);
    assert.deepEqual(e.tiers.high.enrolledAcceptable, ['passkey_device_bound']);
    // totp is not on the swapped phone: what excludes it is the phishing resistance the swap requires.
    assert.deepEqual(reasonsFor(e.tiers.high, 'totp'), ['phishing_resistance.required']);
    assert.ok(e.tiers.high.reasons.includes('sim_swap.phone_bound'));
    assert.ok(e.reasons.some((r) => r.code === 'phishing_resistance.required' && r.user.length > 0));
    assert.deepEqual(e.tiers.high.acrValues, [
      'http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true',
    ]);
    assert.equal(e.riskLevel, 'elevated');
  });
  it('excludes only what the swapped phone carries; the class goes when bindings are unknown', () => {
    const other = run(
      state(
        [bind('phone:main', ['sms_otp']), bind('phone:old', ['voice_otp'])],
        [signal('sim_swap', 'phone:old')],
      ),
    );
    assert.ok(other.tiers.medium.acceptableAuthenticators.includes('sms_otp'));
    assert.ok(!other.tiers.medium.acceptableAuthenticators.includes('voice_otp'));
    const unknown = run(state(undefined, [signal('sim_swap', 'phone:old')]));
    assert.ok(excluded(unknown.tiers.medium).includes('sms_otp'));
    assert.ok(excluded(unknown.tiers.medium).includes('voice_otp'));
  });
});

describe('3. tampered mailbox', () => {
  it('excludes email codes, links and email recovery', () => {
    const mail = bind('email:home', ['email_otp', 'email_link'], ['email_link']);
    const e = run(state([mail, bind('device:phone', ['totp'])], [signal('mailbox_tampered', 'email:home')]));
    for (const tier of TIERS) {
      assert.ok(excluded(e.tiers[tier]).includes('email_otp'), tier);
      assert.ok(excluded(e.tiers[tier]).includes('email_link'), tier);
      assert.ok(!e.tiers[tier].recovery.allowed.includes('email_link'), tier);
    }
    const recovery = e.tiers.low.recovery.excluded.find((x) => x.method === 'email_link');
    assert.deepEqual(recovery?.reasons, ['mailbox_tampered.email_bound', 'recovery.channel_under_suspicion']);
    assert.equal(e.tiers.high.outcome, 'step_up');
  });
});

describe('4. phone and mailbox tampered', () => {
  const signals = [signal('sim_swap', 'phone:main'), signal('mailbox_tampered', 'email:home')];
  const channels = [
    bind('phone:main', ['sms_otp'], ['sms_code']),
    bind('email:home', ['email_otp'], ['email_link']),
  ];
  it('limits recovery to ID with liveness or in person and holds critical without phishing-resistant', () => {
    const e = run(state([...channels, bind('device:phone', ['totp'])], signals));
    for (const tier of TIERS)
      assert.deepEqual(e.tiers[tier].recovery.allowed, ['id_document_liveness', 'in_person']);
    assert.equal(e.tiers.critical.outcome, 'hold');
    assert.equal(e.tiers.critical.holdUntil, undefined);
    assert.ok(e.tiers.critical.reasons.includes('hold.none_enrolled'));
    assert.equal(e.riskLevel, 'high');
  });
  it('lets critical step up when a phishing-resistant authenticator is enrolled', () => {
    const e = run(state([...channels, bind('device:laptop', ['smart_card'])], signals));
    assert.equal(e.tiers.critical.outcome, 'step_up');
    assert.deepEqual(e.tiers.critical.enrolledAcceptable, ['smart_card']);
  });
  it('needs both: one channel alone does not restrict recovery that far', () => {
    const e = run(state(channels, [signal('sim_swap', 'phone:main')]));
    assert.ok(e.tiers.low.recovery.allowed.includes('backup_codes'));
  });
});

describe('5. new or compromised device', () => {
  const phone = bind('device:new', ['push', 'push_number_match', 'totp']);
  it('new device: push and TOTP on it excluded for high and critical only', () => {
    const e = run(
      state(
        [phone, bind('device:laptop', ['security_key'])],
        [signal('device_new', 'device:new', { expiresAt: at(70) })],
      ),
    );
    assert.ok(e.tiers.medium.acceptableAuthenticators.includes('push'));
    assert.ok(e.tiers.medium.acceptableAuthenticators.includes('totp'));
    for (const a of ['push', 'push_number_match', 'totp'])
      assert.deepEqual(reasonsFor(e.tiers.high, a), ['device_new.device_bound']);
    assert.equal(e.tiers.high.outcome, 'step_up');
  });
  it('new device beside one known for years: push counts on the old device alone', () => {
    const e = run(
      state(
        [phone, bind('device:old', ['push', 'totp'])],
        [signal('device_new', 'device:new', { expiresAt: at(70) })],
      ),
    );
    const push = e.tiers.high.excludedAuthenticators.find((x) => x.authenticator === 'push');
    // The class stays excluded for any reader that does not look at bindings...
    assert.ok(!e.tiers.high.acceptableAuthenticators.includes('push'));
    assert.deepEqual(push?.reasons, ['device_new.device_bound']);
    // ...and the binding it still counts on is named; push_number_match lives on the new one only.
    assert.deepEqual(
      push?.acceptableOn,
      [bind('device:old', [])].map(({ channelType, channelRef }) => ({ channelType, channelRef })),
    );
    const pnm = e.tiers.high.excludedAuthenticators.find((x) => x.authenticator === 'push_number_match');
    assert.equal(pnm?.acceptableOn, undefined);
    // A TOTP seed can be copied, and a code does not say where it came from: excluded everywhere.
    const totp = e.tiers.high.excludedAuthenticators.find((x) => x.authenticator === 'totp');
    assert.deepEqual([totp?.reasons, totp?.acceptableOn], [['device_new.device_bound'], undefined]);
    assert.equal(e.tiers.high.outcome, 'step_up');
  });
  it('a class excluded by name, or without a channel to tell bindings apart, counts on no binding', () => {
    const twoDevices = [phone, bind('device:old', ['push', 'totp'])];
    const fatigue = run(state(twoDevices, [signal('mfa_fatigue', 'identity')]));
    for (const tier of TIERS)
      for (const x of fatigue.tiers[tier].excludedAuthenticators)
        assert.equal(x.acceptableOn, undefined, `${tier} ${x.authenticator}`);
    const both = run(
      state(twoDevices, [
        signal('device_new', 'device:new', { expiresAt: at(70) }),
        signal('device_compromised', 'device:old'),
      ]),
    );
    const push = both.tiers.high.excludedAuthenticators.find((x) => x.authenticator === 'push');
    assert.equal(push?.acceptableOn, undefined, 'each device excluded by one rule: nowhere left');
  });
  it('compromised device: excluded from medium up, including passkeys stored on it', () => {
    const e = run(
      state(
        [bind('device:old', ['push', 'passkey_device_bound'])],
        [signal('device_compromised', 'device:old')],
      ),
    );
    assert.ok(e.tiers.low.acceptableAuthenticators.includes('push'));
    assert.ok(excluded(e.tiers.medium).includes('push'));
    assert.ok(excluded(e.tiers.critical).includes('passkey_device_bound'));
    assert.equal(e.tiers.medium.outcome, 'hold');
    assert.equal(e.riskLevel, 'high');
  });
  it('a device-scoped SOC channel_compromised behaves like a compromised device', () => {
    const e = run(state([bind('device:old', ['totp'])], [signal('channel_compromised', 'device:old')]));
    assert.deepEqual(reasonsFor(e.tiers.medium, 'totp'), ['channel_compromised.device']);
  });
});

describe('6. synced passkey recoverable through a tampered channel', () => {
  const sync = bind('sync_account:icloud', ['passkey_synced'], [], ['phone:main']);
  const keys = bind('device:laptop', ['passkey_device_bound', 'security_key']);
  it('is excluded for critical only; device-bound passkeys and security keys still serve', () => {
    const e = run(state([bind('phone:main', ['sms_otp']), sync, keys], [signal('sim_swap', 'phone:main')]));
    assert.deepEqual(reasonsFor(e.tiers.critical, 'passkey_synced'), ['passkey_synced.sync_account_exposed']);
    assert.ok(e.tiers.high.acceptableAuthenticators.includes('passkey_synced'));
    assert.deepEqual(e.tiers.critical.enrolledAcceptable, ['passkey_device_bound', 'security_key']);
  });
  it('also for a mailbox signal; not for a sync account recoverable only via a clean channel', () => {
    const viaMail = bind('sync_account:g', ['passkey_synced'], [], ['email:home']);
    const e = run(state([viaMail], [signal('channel_compromised', 'email:home')]));
    assert.ok(excluded(e.tiers.critical).includes('passkey_synced'));
    const clean = run(state([viaMail], [signal('mailbox_tampered', 'email:other')]));
    assert.ok(clean.tiers.critical.acceptableAuthenticators.includes('passkey_synced'));
  });
});

describe('7. MFA fatigue', () => {
  it('excludes push and push with number matching, elevates risk, and expires on time', () => {
    const e = run(state(undefined, [signal('mfa_fatigue', 'identity', { expiresAt: at(0.25) })]));
    for (const tier of TIERS) {
      assert.ok(excluded(e.tiers[tier]).includes('push'));
      assert.ok(excluded(e.tiers[tier]).includes('push_number_match'));
    }
    assert.ok(e.tiers.high.acceptableAuthenticators.includes('totp'));
    assert.equal(e.riskLevel, 'elevated');
    assert.equal(e.validUntil, at(0.25));
  });
});

describe('8. SOC-confirmed takeover', () => {
  it('holds medium and above, denies critical, recovery in person or by ID, until cleared', () => {
    const e = run(
      state([bind('device:laptop', ['security_key'])], [signal('takeover_confirmed', 'identity')]),
    );
    assert.deepEqual(
      TIERS.map((t) => e.tiers[t].outcome),
      ['step_up', 'hold', 'hold', 'deny'],
    );
    for (const tier of TIERS)
      assert.deepEqual(e.tiers[tier].recovery.allowed, ['id_document_liveness', 'in_person']);
    assert.equal(e.tiers.medium.holdUntil, undefined);
    assert.equal(e.riskLevel, 'critical');
    assert.equal(e.validUntil, at(1));
  });
});

describe('other signals', () => {
  it('an unreadable SOC signal holds critical until it expires, risk high', () => {
    const e = run(state(undefined, [signal('signal_unreadable', 'identity', { expiresAt: at(24) })]));
    assert.equal(e.tiers.high.outcome, 'step_up');
    assert.equal(e.tiers.critical.outcome, 'hold');
    assert.equal(e.tiers.critical.holdUntil, at(24));
    assert.equal(e.riskLevel, 'high');
  });
  it('a channel_compromised naming no channel demands phishing-resistant from medium', () => {
    const e = run(state(undefined, [signal('channel_compromised', 'identity')]));
    assert.equal(e.tiers.medium.requirePhishingResistant, true);
  });
  it('expired signals are ignored; expiry exactly now counts as expired', () => {
    const e = run(
      state(undefined, [signal('takeover_confirmed', 'identity', { expiresAt: NOW.toISOString() })]),
    );
    assert.equal(e.tiers.critical.outcome, 'step_up');
    assert.equal(e.riskLevel, 'low');
  });
  it('a signal with an unreadable expiry stays in force (fail closed)', () => {
    const e = run(state(undefined, [signal('takeover_confirmed', 'identity', { expiresAt: 'garbage' })]));
    assert.equal(e.tiers.critical.outcome, 'deny');
  });
});

describe('enrollment-aware holds', () => {
  it('a step-up tier with nothing acceptable enrolled holds, with a recovery route avoiding tampered channels', () => {
    const phone = bind('phone:main', ['sms_otp'], ['sms_code', 'helpdesk_verified_callback']);
    const mail = bind('email:home', ['email_otp'], ['email_link']);
    const e = run(state([phone, mail], [signal('sim_swap', 'phone:main')]));
    assert.equal(e.tiers.medium.outcome, 'step_up');
    assert.deepEqual(e.tiers.medium.enrolledAcceptable, ['email_otp']);
    assert.equal(e.tiers.high.outcome, 'hold');
    assert.deepEqual(e.tiers.high.enrolledAcceptable, []);
    assert.deepEqual(e.tiers.high.recovery.allowed, ['backup_codes', 'id_document_liveness', 'in_person']);
    assert.ok(e.tiers.high.reasons.includes('hold.none_enrolled'));
    assert.ok(e.reasons.some((r) => r.code === 'hold.none_enrolled' && r.user.length > 0));
  });
  it('known but empty bindings hold every step-up tier; unknown bindings never hold for enrollment', () => {
    const e = run(state([]));
    assert.deepEqual(
      TIERS.map((t) => e.tiers[t].outcome),
      ['allow', 'hold', 'hold', 'hold'],
    );
    assert.deepEqual(e.tiers.low.enrolledAcceptable, []);
  });
});

/** The default policy plus one extra rule, for effects the default does not use. */
function withRule(rule: Record<string, unknown>): Policy {
  const doc = parseDocument(readFileSync(defaultPolicyPath, 'utf8'));
  (doc.get('rules') as { add: (v: unknown) => void }).add(doc.createNode(rule));
  return loadPolicy(doc.toString(), 'test-policy.yaml');
}
const timedHold = withRule({
  id: 'timed-hold',
  when: { signals: ['login_anomaly'] },
  effects: { hold: 'high', holdFor: '30m', requireVerifiedCallback: 'critical' },
  reasons: [{ code: 'test.timed_hold', admin: 'a', user: 'u' }],
});

describe('timed holds and validUntil', () => {
  it('holds until since + holdFor, and re-evaluates then', () => {
    const e = run(
      state(undefined, [signal('login_anomaly', 'identity', { since: at(-1 / 6), expiresAt: at(10) })]),
      timedHold,
    );
    assert.equal(e.tiers.high.outcome, 'hold');
    assert.equal(e.tiers.high.holdUntil, at(1 / 3));
    assert.equal(e.validUntil, at(1 / 3));
    assert.equal(e.tiers.critical.requireVerifiedCallback, true);
  });
  it('a hold never outlives its signal, and an elapsed hold no longer applies', () => {
    const capped = run(
      state(undefined, [signal('login_anomaly', 'identity', { since: at(-0.1), expiresAt: at(0.2) })]),
      timedHold,
    );
    assert.equal(capped.tiers.high.holdUntil, at(0.2));
    const elapsed = run(
      state(undefined, [signal('login_anomaly', 'identity', { since: at(-2), expiresAt: at(10) })]),
      timedHold,
    );
    assert.equal(elapsed.tiers.high.outcome, 'step_up');
  });
  it('an open hold wins over a timed one (no holdUntil)', () => {
    const e = run(
      state(undefined, [signal('login_anomaly', 'identity'), signal('takeover_confirmed', 'identity')]),
      timedHold,
    );
    assert.equal(e.tiers.high.outcome, 'hold');
    assert.equal(e.tiers.high.holdUntil, undefined);
  });
});

describe('fail closed', () => {
  it('never throws: broken state gives the strictest requirement everywhere', () => {
    const e = evaluate(policy, { ...state(undefined), signals: null } as unknown as IdentityState, NOW);
    assert.equal(e.riskLevel, 'critical');
    for (const tier of TIERS) assert.deepEqual(e.tiers[tier], strictestRequirement(policy, tier));
    assert.deepEqual(
      e.reasons.map((r) => r.code),
      ['policy.fail_closed'],
    );
    assert.equal(e.validUntil, at(1));
  });
  it('a failure is reported to the caller, so it is counted and logged, not only contained', () => {
    const seen: unknown[] = [];
    const e = evaluate(
      policy,
      { ...state(undefined), signals: null } as unknown as IdentityState,
      NOW,
      (err) => seen.push(err),
    );
    assert.equal(e.riskLevel, 'critical');
    assert.equal(seen.length, 1);
    assert.ok(seen[0] instanceof Error);
    evaluate(policy, state(undefined), NOW, (err) => seen.push(err));
    assert.equal(seen.length, 1, 'a sound evaluation reports nothing');
  });
  it('an invalid clock asks to be re-read at once', () => {
    const e = evaluate(policy, state(undefined), new Date(Number.NaN));
    assert.equal(e.validUntil, new Date(0).toISOString());
    assert.equal(e.tiers.low.outcome, 'hold');
  });
  it('strictestRequirement is a deny-free hold with only in-person recovery, valid per the contract', () => {
    for (const tier of TIERS as readonly Tier[]) {
      const r = TierRequirementSchema.parse(strictestRequirement(policy, tier));
      assert.equal(r.outcome, 'hold');
      assert.deepEqual(r.recovery.allowed, ['in_person']);
      assert.deepEqual(r.acceptableAuthenticators, []);
    }
  });
});
