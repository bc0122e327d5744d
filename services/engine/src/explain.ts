import type { Policy } from '@assurance/policy';
import { evaluate } from '@assurance/policy';
import type { SignalStore } from '@assurance/redis';
import { toIdentityState } from '@assurance/redis';
import type { Decision } from '@assurance/schemas';

/** Everything an operator needs to see why an identity is where it is, as data. */
export async function explainIdentity(
  store: SignalStore,
  policy: Policy,
  identityId: string,
  now = new Date(),
) {
  const loaded = await store.loadIdentity(identityId);
  const state = toIdentityState(identityId, loaded, now.getTime());
  const evaluation = evaluate(policy, state, now);
  const decision = loaded.decision ? (JSON.parse(loaded.decision) as Decision) : null;
  return {
    identityId,
    tenantId: loaded.tenantId,
    bindingsKnown: loaded.bindingsKnown,
    bindings: state.bindings,
    activeSignals: state.signals,
    /** Cleared or expired records still kept for ordering (a late raise cannot resurrect them). */
    inactiveSignals: loaded.signals.filter(
      (r) => !state.signals.some((s) => s.code === r.code && s.ref === r.ref && s.scope === r.scope),
    ),
    decision: decision && {
      sequence: decision.sequence,
      computedAt: decision.computedAt,
      riskLevel: decision.riskLevel,
      trigger: decision.trigger,
      outcomes: Object.fromEntries(Object.entries(decision.tiers).map(([t, r]) => [t, r.outcome])),
    },
    publishedSequence: loaded.published,
    outboxPending: loaded.outbox !== null && loaded.seq > loaded.published,
    now: {
      riskLevel: evaluation.riskLevel,
      outcomes: Object.fromEntries(Object.entries(evaluation.tiers).map(([t, r]) => [t, r.outcome])),
      reasons: evaluation.reasons,
      validUntil: evaluation.validUntil,
    },
  };
}

export type Explanation = Awaited<ReturnType<typeof explainIdentity>>;

/** The explanation as a person reads it. */
export function renderExplanation(e: Explanation): string {
  const out: string[] = [`identity ${e.identityId}${e.tenantId ? ` (tenant ${e.tenantId})` : ''}`];
  out.push(`bindings${e.bindingsKnown ? '' : ' (none seen: enrollment unknown)'}:`);
  for (const b of e.bindings) {
    out.push(
      `  ${b.channelType.padEnd(12)} ${b.channelRef.slice(0, 12)}…  authenticators ${b.authenticators.join(', ') || '—'}  recovery ${b.recovery.join(', ') || '—'}  since ${b.boundAt}`,
    );
  }
  out.push('active signals:');
  if (e.activeSignals.length === 0) out.push('  none');
  for (const s of e.activeSignals) {
    out.push(
      `  ${s.code} on ${s.scope}${s.ref ? ` ${s.ref.slice(0, 12)}…` : ''} since ${s.since} until ${s.expiresAt ?? 'cleared'}  (events ${s.sourceEventIds.join(', ')})`,
    );
  }
  if (e.decision) {
    out.push(
      `published decision #${e.decision.sequence} (${e.decision.computedAt}, risk ${e.decision.riskLevel}, after ${e.decision.trigger.topic} ${e.decision.trigger.eventId}): ${Object.entries(
        e.decision.outcomes,
      )
        .map(([t, o]) => `${t} ${o}`)
        .join(', ')}`,
    );
  } else out.push('no decision yet');
  if (e.outboxPending)
    out.push(
      `decision #${e.decision?.sequence} is stored but not yet acknowledged by Kafka (published #${e.publishedSequence})`,
    );
  out.push(
    `evaluated now: risk ${e.now.riskLevel}; ${Object.entries(e.now.outcomes)
      .map(([t, o]) => `${t} ${o}`)
      .join(', ')}; valid until ${e.now.validUntil}`,
  );
  out.push('why:');
  for (const r of e.now.reasons) out.push(`  ${r.code}: ${r.admin}`);
  return out.join('\n');
}
