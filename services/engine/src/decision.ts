import { createHash } from 'node:crypto';
import type { Evaluation, Policy } from '@assurance/policy';
import { compactTiers, enrolledOf } from '@assurance/policy';
import type {
  ActiveSignal,
  AuditRecord,
  Decision,
  DecisionV2,
  IdentityState,
  Trigger,
} from '@assurance/schemas';

/**
 * Pure assembly of decisions and audit records from a policy evaluation. Whether a decision
 * "changed" ignores computedAt, validUntil, sequence and trigger (docs/contract.md, the decision: it
 * is published when its substance changes, or to renew it before its validUntil lapses), so
 * re-deciding an unchanged identity publishes nothing until its renewal is due.
 */

function sortedSignals(signals: readonly ActiveSignal[]): ActiveSignal[] {
  return [...signals]
    .map((s) => ({ ...s, sourceEventIds: [...s.sourceEventIds].sort() }))
    .sort((a, b) =>
      `${a.code}|${a.scope}|${a.ref ?? ''}|${a.since}`.localeCompare(
        `${b.code}|${b.scope}|${b.ref ?? ''}|${b.since}`,
      ),
    );
}

export function buildDecision(args: {
  policy: Policy;
  state: IdentityState;
  evaluation: Evaluation;
  sequence: number;
  trigger: Trigger;
  now: Date;
}): Decision {
  const { policy, state, evaluation, sequence, trigger, now } = args;
  return {
    identityId: state.identityId,
    tenantId: state.tenantId,
    sequence,
    policyVersion: policy.version,
    policyDigest: policy.digest,
    computedAt: now.toISOString(),
    validUntil: evaluation.validUntil,
    riskLevel: evaluation.riskLevel,
    tiers: evaluation.tiers,
    signals: sortedSignals(state.signals),
    bindingsKnown: state.bindingsKnown,
    trigger,
  };
}

/**
 * The decision as published in format 2 (docs/contract.md, decision format 2): tiers written
 * relative to the policy, and the authenticators enrolled when bindings are known. Its substance is
 * the v1 decision's: the digest is taken from that, so switching formats publishes nothing new.
 */
export function toDecisionV2(policy: Policy, d: Decision, state: IdentityState): DecisionV2 {
  const { tiers, ...envelope } = d;
  const enrolled = enrolledOf(state.bindingsKnown, state.bindings);
  return {
    ...envelope,
    format: 2,
    ...compactTiers(policy, tiers, enrolled),
    ...(enrolled === null ? {} : { enrolled }),
  };
}

/** The part of a decision whose change is worth publishing. */
export function materialOf(d: Decision): string {
  return JSON.stringify({
    tenantId: d.tenantId,
    policyDigest: d.policyDigest,
    riskLevel: d.riskLevel,
    tiers: d.tiers,
    signals: d.signals.map((s) => ({
      code: s.code,
      scope: s.scope,
      ref: s.ref,
      since: s.since,
      expiresAt: s.expiresAt,
    })),
    bindingsKnown: d.bindingsKnown,
  });
}

/**
 * The digest of a decision's substance (materialOf): equal digests, equal decisions for a reader.
 * The store keeps it instead of the decision (docs/state.md), and the audit names the previous one.
 */
export function digestOf(d: Decision): string {
  return createHash('sha256').update(materialOf(d)).digest('base64url').slice(0, 16);
}

export function buildAudit(
  previous: { sequence: number; digest: string } | null,
  after: Decision | DecisionV2,
  evaluation: Evaluation,
  now: Date,
): AuditRecord {
  return {
    identityId: after.identityId,
    tenantId: after.tenantId,
    sequence: after.sequence,
    previous,
    ...('format' in after ? { afterV2: after } : { after }),
    reasons: evaluation.reasons.map((r) => ({ code: r.code, admin: r.admin, user: r.user })),
    trigger: after.trigger,
    policyVersion: after.policyVersion,
    policyDigest: after.policyDigest,
    recordedAt: now.toISOString(),
  };
}

/**
 * How long before its `validUntil` an unchanged decision is renewed, so readers of the topic (who
 * fail closed past it) never see a live identity's decision lapse: a tenth of the staleness bound,
 * at most a minute.
 */
export function renewLeadMs(stalenessMs: number): number {
  return Math.min(60_000, Math.floor(stalenessMs / 10));
}

/**
 * When the identity must be decided again without any event: the earliest future signal expiry or
 * hold end, or the renewal of the decision before its `validUntil` (see renewLeadMs).
 */
export function nextRedecisionMs(d: Decision, nowMs: number, renewLead: number): number | null {
  let next = Number.POSITIVE_INFINITY;
  for (const s of d.signals) {
    if (s.expiresAt) {
      const t = Date.parse(s.expiresAt);
      if (t > nowMs && t < next) next = t;
    }
  }
  for (const tier of Object.values(d.tiers)) {
    if (tier.holdUntil) {
      const t = Date.parse(tier.holdUntil);
      if (t > nowMs && t < next) next = t;
    }
  }
  // A validUntil that is not an expiry or hold end is the staleness bound: renew before it lapses.
  const validUntil = Date.parse(d.validUntil);
  if (next > validUntil) {
    const renewAt = validUntil - renewLead;
    next = Math.min(next, Math.max(renewAt, nowMs + 1));
  }
  return Number.isFinite(next) ? next : null;
}

const AFTER = '\u0000after\u0000';
const AFTER_JSON = JSON.stringify(AFTER);

/**
 * The audit record's JSON with its decision (`after`, or `afterV2` in format 2) spliced in as
 * already serialised: the decision is most of the record, and serialising it twice was a visible
 * share of the decider's CPU. Same text as JSON.stringify(audit): the decision field holds the
 * object `decisionText` was made from.
 */
export function auditText(audit: AuditRecord, decisionText: string): string {
  const field = audit.afterV2 !== undefined ? 'afterV2' : 'after';
  const shell = JSON.stringify({ ...audit, [field]: AFTER });
  const at = shell.indexOf(AFTER_JSON);
  // A placeholder found twice (a field holding the same text): no splicing, just serialise.
  if (at < 0 || shell.indexOf(AFTER_JSON, at + 1) >= 0) return JSON.stringify(audit);
  return shell.slice(0, at) + decisionText + shell.slice(at + AFTER_JSON.length);
}
