import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { evaluate, expandTiers, loadPolicyFile } from '@assurance/policy';
import type { IdentityState } from '@assurance/schemas';
import { AuditRecord, DecisionV2 } from '@assurance/schemas';
import {
  auditText,
  buildAudit,
  buildDecision,
  digestOf,
  materialOf,
  nextRedecisionMs,
  renewLeadMs,
  toDecisionV2,
} from './decision.ts';

const policy = loadPolicyFile();
const now = new Date('2026-11-28T10:00:00.000Z');
const state: IdentityState = {
  identityId: 'u',
  tenantId: null,
  bindingsKnown: false,
  bindings: [],
  signals: [
    {
      code: 'takeover_confirmed',
      scope: 'identity',
      ref: null,
      since: '2026-11-28T09:00:00.000Z',
      expiresAt: '2026-11-28T11:00:00.000Z',
      sourceEventIds: ['b', 'a'],
      attributes: {},
    },
  ],
};
const trigger = { eventId: 'e', topic: 'identity.compromise-signal.v1', occurredAt: now.toISOString() };

describe('decisions', () => {
  const evaluation = evaluate(policy, state, now);
  const d = buildDecision({ policy, state, evaluation, sequence: 3, trigger, now });

  test('what counts as a change ignores computedAt, validUntil, sequence and trigger', () => {
    const later = new Date(now.getTime() + 60_000);
    const again = buildDecision({
      policy,
      state,
      evaluation: evaluate(policy, state, later),
      sequence: 4,
      trigger: { ...trigger, eventId: 'f' },
      now: later,
    });
    assert.equal(materialOf(again), materialOf(d));
  });

  test('a signal ending is a change', () => {
    const relaxed = buildDecision({
      policy,
      state: { ...state, signals: [] },
      evaluation: evaluate(policy, { ...state, signals: [] }, now),
      sequence: 4,
      trigger,
      now,
    });
    assert.notEqual(materialOf(relaxed), materialOf(d));
  });

  test('the next re-decision is the earliest future expiry; a staleness bound is renewed ahead of time', () => {
    const lead = renewLeadMs(policy.evaluation.stalenessMs);
    assert.equal(lead, 60_000);
    // The expiry at 11:00 is also the validUntil: the re-decision then publishes the change anyway.
    assert.equal(nextRedecisionMs(d, now.getTime(), lead), Date.parse('2026-11-28T11:00:00.000Z'));
    const quiet = buildDecision({
      policy,
      state: { ...state, signals: [] },
      evaluation: evaluate(policy, { ...state, signals: [] }, now),
      sequence: 4,
      trigger,
      now,
    });
    // Nothing expires: renewed a minute before its validUntil (now + the 1 h staleness bound).
    assert.equal(nextRedecisionMs(quiet, now.getTime(), lead), Date.parse('2026-11-28T10:59:00.000Z'));
    // Already inside the renewal window: due at once.
    const late = Date.parse('2026-11-28T10:59:30.000Z');
    assert.equal(nextRedecisionMs(quiet, late, lead), late + 1);
  });

  test('the audit record names the previous decision by sequence and digest, not by a copy', () => {
    const a = buildAudit(null, d, evaluation, now);
    assert.equal(a.previous, null);
    assert.equal(a.sequence, 3);
    const b = buildAudit({ sequence: 3, digest: digestOf(d) }, { ...d, sequence: 4 }, evaluation, now);
    assert.deepEqual(b.previous, { sequence: 3, digest: digestOf(d) });
    assert.ok(!JSON.stringify(b).includes('"before"'));
    assert.equal(a.policyDigest, policy.digest);
    assert.ok(a.reasons.length > 0 && a.reasons.every((r) => r.admin && r.user));
  });
});

describe('digestOf', () => {
  const policy = loadPolicyFile();
  const trigger = { eventId: 'e', topic: 't', occurredAt: '2026-11-28T10:00:00.000Z' };
  const state = { identityId: 'u', tenantId: null, bindingsKnown: false, bindings: [], signals: [] };
  test('equal substance, equal digest: sequence, times and trigger do not count', () => {
    const at = (iso: string, sequence: number) =>
      buildDecision({
        policy,
        state,
        evaluation: evaluate(policy, state, new Date(iso)),
        sequence,
        trigger,
        now: new Date(iso),
      });
    const a = at('2026-11-28T10:00:00.000Z', 1);
    const b = at('2026-11-28T10:30:00.000Z', 9);
    assert.equal(digestOf(a), digestOf(b));
    assert.notEqual(digestOf(a), digestOf({ ...a, riskLevel: 'critical' }));
  });
});

describe('audit text', () => {
  const evaluation = evaluate(policy, state, now);
  const d = buildDecision({ policy, state, evaluation, sequence: 3, trigger, now });
  test('splicing the serialised decision gives exactly the audit record serialised whole', () => {
    for (const decision of [
      d,
      { ...d, identityId: '\u0000after\u0000' },
      { ...d, identityId: 'a"b\\c\u2028' },
    ]) {
      const audit = buildAudit({ sequence: 2, digest: 'dg' }, decision, evaluation, now);
      assert.equal(auditText(audit, JSON.stringify(decision)), JSON.stringify(audit));
    }
  });
});

describe('decision format 2', () => {
  const evaluation = evaluate(policy, state, now);
  const d = buildDecision({ policy, state, evaluation, sequence: 3, trigger, now });
  test('carries the v1 envelope and tiers that expand back to the v1 ones, in a fraction of the bytes', () => {
    const v2 = DecisionV2.parse(toDecisionV2(policy, d, state));
    const { tiers, ...envelope } = d;
    const { format, tiers: compact, exclusions, recoveryExclusions, enrolled, ...rest } = v2;
    assert.equal(format, 2);
    assert.deepEqual(rest, envelope);
    assert.equal(enrolled, undefined, 'bindings unknown: nothing enrolled to carry');
    const expanded = expandTiers(
      policy,
      {
        tiers: compact,
        ...(exclusions ? { exclusions } : {}),
        ...(recoveryExclusions ? { recoveryExclusions } : {}),
      },
      null,
    );
    assert.deepStrictEqual(expanded, tiers);
    assert.ok(JSON.stringify(v2).length * 2 < JSON.stringify(d).length);
  });
  test('its audit record carries it as afterV2, spliced like a v1 one', () => {
    const v2 = toDecisionV2(policy, d, state);
    const audit = buildAudit(null, v2, evaluation, now);
    assert.equal(audit.after, undefined);
    assert.deepEqual(audit.afterV2, v2);
    assert.equal(auditText(audit, JSON.stringify(v2)), JSON.stringify(audit));
    assert.ok(AuditRecord.safeParse(JSON.parse(JSON.stringify(audit))).success);
  });
});
