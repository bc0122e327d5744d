import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FAIL_CLOSED } from '@assurance/policy';
import {
  checkArguments,
  checkCompletion,
  DEGRADED_MISSING,
  failClosedAnswer,
  mergeVerdicts,
  verifyAgainst,
} from './answers.ts';
import { AssuranceClientError } from './errors.ts';
import { decisionFor, policy } from './test-support.ts';
import type { RequirementAnswer } from './types.ts';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const justNow = new Date(NOW.getTime() - 1000).toISOString();

function answerFrom(tier: 'high' | 'critical', degraded = false): RequirementAnswer {
  const d = decisionFor('alice', 3, [], NOW);
  return {
    identityId: 'alice',
    action: 'payout.change',
    tier,
    requirement: d.tiers[tier],
    degraded,
    degradedReasons: degraded ? ['timeout'] : [],
    sequence: 3,
    source: 'http',
    riskLevel: d.riskLevel,
    validUntil: d.validUntil,
    policyDigest: d.policyDigest,
  };
}

describe('checkArguments', () => {
  it('accepts ordinary ids and actions', () => {
    checkArguments('user-42', 'payout.change');
  });
  for (const [identityId, action] of [
    ['', 'payout.change'],
    ['x'.repeat(201), 'payout.change'],
    ['alice', ''],
    ['alice', 'Payout.Change'],
    ['alice', 'payout..change'],
    ['alice', 'payout.change\n'],
    [42, 'payout.change'],
  ] as const) {
    it(`rejects ${JSON.stringify([identityId, action]).slice(0, 40)} as invalid_request`, () => {
      assert.throws(
        () => checkArguments(identityId, action),
        (e: unknown) => e instanceof AssuranceClientError && e.code === 'invalid_request',
      );
    });
  }
});

describe('checkCompletion', () => {
  it('normalizes the channel as the events do', () => {
    assert.deepEqual(
      checkCompletion({ authenticator: 'sms_otp', channel: { type: 'phone', value: '0049 151 1234 5678' } }),
      {
        authenticator: 'sms_otp',
        channel: { type: 'phone', value: '+4915112345678' },
      },
    );
  });
  it('keeps the known members and drops the rest', () => {
    const at = '2026-03-01T11:59:00Z';
    assert.deepEqual(
      checkCompletion({ authenticator: 'security_key', authenticatedAt: at, liveness: true, extra: 1 }),
      { authenticator: 'security_key', authenticatedAt: at, liveness: true },
    );
    assert.deepEqual(checkCompletion(undefined), {});
  });
  for (const bad of [
    { authenticator: 'carrier_pigeon' },
    { recoveryMethod: 'ask_nicely' },
    { liveness: 'yes' },
    { authenticatedAt: 'yesterday' },
    { channel: { type: 'phone', value: '555-0134' } },
    { channel: { type: 'carrier_pigeon', value: 'x' } },
    { channel: 'phone-old' },
    'security_key',
    [],
  ]) {
    it(`rejects ${JSON.stringify(bad)} as invalid_request`, () => {
      assert.throws(
        () => checkCompletion(bad),
        (e: unknown) => e instanceof AssuranceClientError && e.code === 'invalid_request',
      );
    });
  }
});

describe('failClosedAnswer', () => {
  it('holds at the strictest requirement of the action tier, degraded with the reason', () => {
    const a = failClosedAnswer(policy, 'topic', 'alice', 'payout.change', ['stale_view'], NOW);
    assert.equal(a.tier, 'high');
    assert.equal(a.degraded, true);
    assert.deepEqual(a.degradedReasons, ['stale_view']);
    assert.equal(a.requirement.outcome, 'hold');
    assert.deepEqual(a.requirement.acceptableAuthenticators, []);
    assert.deepEqual(a.requirement.recovery.allowed, ['in_person']);
    assert.deepEqual(a.requirement.reasons, [FAIL_CLOSED]);
    assert.equal(a.riskLevel, 'critical');
    assert.equal(a.sequence, 0);
  });
  it('maps unknown actions to critical', () => {
    assert.equal(failClosedAnswer(policy, 'http', 'a', 'no.such.action', ['timeout'], NOW).tier, 'critical');
  });
  it('never answers degraded without a reason', () => {
    assert.deepEqual(failClosedAnswer(policy, 'http', 'a', 'payout.change', [], NOW).degradedReasons, [
      'upstream_degraded',
    ]);
  });
});

describe('verifyAgainst', () => {
  it('a fresh phishing-resistant step-up satisfies high with no signals', () => {
    const v = verifyAgainst(
      answerFrom('high'),
      { authenticator: 'passkey_device_bound', authenticatedAt: justNow },
      NOW,
    );
    assert.equal(v.satisfied, true);
    assert.deepEqual(v.missing, []);
  });
  it('an SMS code does not satisfy high', () => {
    const v = verifyAgainst(answerFrom('high'), { authenticator: 'sms_otp', authenticatedAt: justNow }, NOW);
    assert.equal(v.satisfied, false);
    assert.ok(v.missing.includes('authenticator_not_acceptable'));
  });
  it('a degraded answer is never satisfied, even by what its requirement would accept', () => {
    const degraded = { ...answerFrom('high', true) };
    const v = verifyAgainst(
      degraded,
      { authenticator: 'passkey_device_bound', authenticatedAt: justNow },
      NOW,
    );
    assert.equal(v.satisfied, false);
    assert.equal(v.missing[0], DEGRADED_MISSING);
  });
  it('the fail-closed answer misses degraded and the hold', () => {
    const a = failClosedAnswer(policy, 'http', 'alice', 'payout.change', ['timeout'], NOW);
    const v = verifyAgainst(
      a,
      { authenticator: 'security_key', liveness: true, verifiedCallback: true, recoveryMethod: 'in_person' },
      NOW,
    );
    assert.equal(v.satisfied, false);
    assert.deepEqual(v.missing, [DEGRADED_MISSING, 'action_on_hold']);
  });
});

describe('mergeVerdicts', () => {
  const completed = { authenticator: 'sms_otp', authenticatedAt: justNow } as const;
  it('an API "satisfied" that contradicts its own requirement is not satisfied', () => {
    const v = mergeVerdicts(answerFrom('high'), { satisfied: true, missing: [] }, completed, NOW);
    assert.equal(v.satisfied, false);
    assert.ok(v.missing.includes('authenticator_not_acceptable'));
  });
  it('agreement on satisfied stays satisfied', () => {
    const ok = { authenticator: 'security_key', authenticatedAt: justNow } as const;
    const v = mergeVerdicts(answerFrom('high'), { satisfied: true, missing: [] }, ok, NOW);
    assert.equal(v.satisfied, true);
    assert.deepEqual(v.missing, []);
  });
  it("the local check judges the channel as the API's hash of it, and only that", () => {
    const old = { channelType: 'device', channelRef: 'a'.repeat(32) } as const;
    const base = answerFrom('high');
    const push = base.requirement.excludedAuthenticators.filter((x) => x.authenticator !== 'push');
    const onOld: RequirementAnswer = {
      ...base,
      requirement: {
        ...base.requirement,
        acceptableAuthenticators: base.requirement.acceptableAuthenticators.filter((a) => a !== 'push'),
        excludedAuthenticators: [
          ...push,
          { authenticator: 'push', reasons: ['device_new.device_bound'], acceptableOn: [old] },
        ],
      },
    };
    const completed = {
      authenticator: 'push',
      channel: { type: 'device', value: 'phone-old' },
      authenticatedAt: justNow,
    } as const;
    assert.equal(
      mergeVerdicts(onOld, { satisfied: true, missing: [], channel: old }, completed, NOW).satisfied,
      true,
    );
    const elsewhere = { ...old, channelRef: 'b'.repeat(32) };
    const v = mergeVerdicts(onOld, { satisfied: true, missing: [], channel: elsewhere }, completed, NOW);
    assert.deepEqual([v.satisfied, v.missing], [false, ['channel_not_acceptable']]);
    const unjudged = mergeVerdicts(onOld, { satisfied: true, missing: [] }, completed, NOW);
    assert.deepEqual([unjudged.satisfied, unjudged.missing], [false, ['channel_required']]);
  });
  it('codes only the API knows are kept', () => {
    const ok = { authenticator: 'security_key', authenticatedAt: justNow } as const;
    const v = mergeVerdicts(answerFrom('high'), { satisfied: false, missing: ['device_untrusted'] }, ok, NOW);
    assert.equal(v.satisfied, false);
    assert.deepEqual(v.missing, ['device_untrusted']);
  });
});
