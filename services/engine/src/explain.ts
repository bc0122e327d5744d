import type { Policy } from '@assurance/policy';
import { compareTiers, evaluate } from '@assurance/policy';
import type { Fingerprint, MetaStore, StateReader } from '@assurance/redis';
import { emptyState, epochOf, toIdentityState } from '@assurance/redis';

/**
 * Everything an operator needs to see why an identity is where it is, as data; with `candidate`,
 * also what that policy would require now of the same state, and how each tier would move.
 */
export async function explainIdentity(
  store: StateReader,
  meta: MetaStore,
  policy: Policy,
  identityId: string,
  now = new Date(),
  candidate?: Policy,
) {
  const [record, fingerprint, recovering] = await Promise.all([
    store.read(identityId, now.getTime()),
    meta.fingerprint(),
    meta.recoveryPending(),
  ]);
  const state = record ? toIdentityState(record, now.getTime()) : emptyState(identityId);
  const evaluation = evaluate(policy, state, now);
  const whatIf = candidate === undefined ? undefined : evaluate(candidate, state, now);
  return {
    identityId,
    store: storeStatus(fingerprint, recovering),
    stored: record !== null,
    tenantId: state.tenantId,
    bindingsKnown: state.bindingsKnown,
    bindings: state.bindings,
    activeSignals: state.signals,
    /** Cleared or expired records still kept for ordering (a late raise cannot resurrect them). */
    inactiveSignals: (record?.signals ?? []).filter(
      (r) => !state.signals.some((s) => s.code === r.code && s.ref === r.ref && s.scope === r.scope),
    ),
    overflowSince: record?.overflowSinceMs ? new Date(record.overflowSinceMs).toISOString() : null,
    forgottenAt:
      record?.horizonMs && record.horizonMs !== -1 ? new Date(record.horizonMs).toISOString() : null,
    decision:
      record && record.seq > 0
        ? {
            sequence: record.seq,
            epoch: epochOf(record.seq),
            digest: record.digest,
            validUntil: record.validUntilMs === null ? null : new Date(record.validUntilMs).toISOString(),
          }
        : null,
    publishedSequence: record?.published ?? 0,
    pending: record !== null && record.seq > record.published,
    now: {
      riskLevel: evaluation.riskLevel,
      outcomes: Object.fromEntries(Object.entries(evaluation.tiers).map(([t, r]) => [t, r.outcome])),
      reasons: evaluation.reasons,
      validUntil: evaluation.validUntil,
    },
    ...(candidate && whatIf
      ? {
          candidate: {
            policy: `${candidate.source} ${candidate.version} (${candidate.digest})`,
            riskLevel: whatIf.riskLevel,
            transitions: compareTiers(evaluation.tiers, whatIf.tiers),
            reasons: whatIf.reasons,
          },
        }
      : {}),
  };
}

function storeStatus(fp: Fingerprint | null, recovering: number): string {
  if (!fp)
    return 'no fingerprint: new, lost or another prefix (every answer is degraded until an engine recovers it)';
  if (recovering > 0)
    return `epoch ${fp.epoch}, recovering ${recovering} partition(s) after a data loss (answers degraded)`;
  return `epoch ${fp.epoch}, complete`;
}

export type Explanation = Awaited<ReturnType<typeof explainIdentity>>;

/** The explanation as a person reads it. */
export function renderExplanation(e: Explanation): string {
  const out: string[] = [`identity ${e.identityId}${e.tenantId ? ` (tenant ${e.tenantId})` : ''}`];
  out.push(`store: ${e.store}`);
  if (!e.stored) out.push('nothing stored for this identity (never seen, or forgotten)');
  if (e.overflowSince)
    out.push(`over a state cap since ${e.overflowSince}: fails closed (signal_unreadable)`);
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
      `last decision #${e.decision.sequence} (epoch ${e.decision.epoch}, digest ${e.decision.digest}, valid until ${e.decision.validUntil ?? '—'})`,
    );
  } else out.push('no decision yet');
  if (e.pending)
    out.push(
      `decision #${e.decision?.sequence} is recorded but not yet acknowledged by Kafka (published #${e.publishedSequence}); it is made again from the state`,
    );
  out.push(
    `evaluated now: risk ${e.now.riskLevel}; ${Object.entries(e.now.outcomes)
      .map(([t, o]) => `${t} ${o}`)
      .join(', ')}; valid until ${e.now.validUntil}`,
  );
  out.push('why:');
  for (const r of e.now.reasons) out.push(`  ${r.code}: ${r.admin}`);
  if (e.candidate) {
    out.push(`with ${e.candidate.policy}: risk ${e.candidate.riskLevel}`);
    for (const t of e.candidate.transitions)
      out.push(
        `  ${t.tier.padEnd(8)} ${t.from} -> ${t.to}  ${t.direction}${t.reasonsAdded.length ? `  +${t.reasonsAdded.join(' +')}` : ''}${t.reasonsRemoved.length ? `  -${t.reasonsRemoved.join(' -')}` : ''}`,
      );
    out.push('  why, with it:');
    for (const r of e.candidate.reasons) out.push(`    ${r.code}: ${r.admin}`);
  }
  return out.join('\n');
}
