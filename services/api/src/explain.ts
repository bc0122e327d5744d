import type { EngineHealth } from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import { evaluate, rulesFiredBy } from '@assurance/policy';
import type { IdentityRecord, StateReader, StoreStatus } from '@assurance/redis';
import { emptyState, toIdentityState } from '@assurance/redis';
import type { ActiveSignal } from '@assurance/schemas';
import { CHANNEL_TYPES, type ChannelType } from '@assurance/schemas';
import { checkTenant } from './auth.ts';
import { healthReasons } from './engine-health.ts';
import { ApiProblem } from './problem.ts';
import type { DegradedReason, SignalsResponse } from './schemas.ts';
import type { TokenGrant } from './tokens.ts';

/**
 * "Why is this identity locked down?": the live signals from Redis, each with the policy rules it
 * makes fire (reason codes and operator texts), and the identity's bindings as channel type,
 * hashed ref and uses. Channel values never reach Redis, so they cannot appear here either.
 */

function channelTypeOf(signal: ActiveSignal): ChannelType | null {
  return CHANNEL_TYPES.find((t) => t === signal.scope) ?? null;
}

export interface ExplainDeps {
  readonly store: StateReader;
  readonly policy: Policy;
  readonly engineHealth: () => EngineHealth;
  readonly storeReasons: (status: StoreStatus) => DegradedReason[];
  /** Counts and logs an evaluation that threw (the answer is then the strictest). */
  readonly onEvaluationFailure?: (err: unknown) => void;
  readonly clock?: () => Date;
}

export async function explainIdentity(
  deps: ExplainDeps,
  identityId: string,
  caller: TokenGrant | null = null,
): Promise<SignalsResponse> {
  const now = (deps.clock ?? (() => new Date()))();
  const degradedReasons: DegradedReason[] = healthReasons(deps.engineHealth());
  let record: IdentityRecord | null;
  let status: StoreStatus;
  try {
    ({ record, status } = await deps.store.readWithStatus(identityId, now.getTime()));
  } catch (err) {
    if ((err as { code?: string }).code === 'state_corrupt') {
      throw new ApiProblem('internal', 'the stored state of this identity cannot be read', { cause: err });
    }
    throw new ApiProblem('redis_unavailable', 'the signal state cannot be read now; retry shortly', {
      cause: err,
      headers: { 'retry-after': '1' },
    });
  }
  checkTenant(caller, record);
  degradedReasons.push(...deps.storeReasons(status));
  const sequence = record?.seq ?? 0;
  const state = record ? toIdentityState(record, now.getTime()) : emptyState(identityId);
  const evaluation = evaluate(deps.policy, state, now, deps.onEvaluationFailure);
  return {
    identityId,
    degraded: degradedReasons.length > 0,
    degradedReasons,
    sequence,
    policyVersion: deps.policy.version,
    policyDigest: deps.policy.digest,
    computedAt: now.toISOString(),
    riskLevel: evaluation.riskLevel,
    bindingsKnown: state.bindingsKnown,
    signals: [...state.signals].sort(bySignalKey).map((signal) => ({
      ...signal,
      channelType: channelTypeOf(signal),
      rules: rulesFiredBy(deps.policy.rules, signal, state.signals, now.getTime()).map((rule) => ({
        id: rule.id,
        reasons: rule.reasons.map((r) => ({ code: r.code, admin: r.admin })),
      })),
    })),
    bindings: state.bindings.map((b) => ({
      channelType: b.channelType,
      channelRef: b.channelRef,
      uses: { authenticators: [...b.authenticators], recovery: [...b.recovery] },
      boundAt: b.boundAt,
      recoverableVia: (b.recoverableVia ?? []).map((v) => ({
        channelType: v.channelType,
        channelRef: v.channelRef,
      })),
    })),
    reasons: evaluation.reasons.map((r) => ({ code: r.code, admin: r.admin, user: r.user })),
  };
}

function bySignalKey(a: ActiveSignal, b: ActiveSignal): number {
  const key = (s: ActiveSignal) => `${s.code}|${s.scope}|${s.ref ?? ''}|${s.since}`;
  return key(a).localeCompare(key(b));
}
