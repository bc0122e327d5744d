import type { Logger } from '@assurance/core';
import type { EngineHealth } from '@assurance/kafka';
import type { Evaluation, Policy } from '@assurance/policy';
import { evaluate, strictestRequirement } from '@assurance/policy';
import type { IdentityRecord, StateReader, StoreStatus } from '@assurance/redis';
import { emptyState, toIdentityState } from '@assurance/redis';
import { TIERS, type Tier, type TierRequirement } from '@assurance/schemas';
import { checkTenant } from './auth.ts';
import { healthReasons } from './engine-health.ts';
import type { ApiMetrics } from './metrics.ts';
import { ApiProblem } from './problem.ts';
import type { AssuranceResponse, DegradedReason } from './schemas.ts';
import type { SourceFloor } from './source-health.ts';
import type { TokenGrant } from './tokens.ts';

export interface ReaderDeps {
  readonly store: StateReader;
  readonly policy: Policy;
  /** The engine's health as last sampled in the background. */
  readonly engineHealth: () => EngineHealth;
  /** Tiers that fail closed because a Shared Signals transmitter's stream is not healthy. */
  readonly sourceFloor?: () => SourceFloor | undefined;
  /** Why the store cannot be answered from now (store-trust.ts). */
  readonly storeReasons: (status: StoreStatus) => DegradedReason[];
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly clock?: () => Date;
}

/**
 * The read path: the current requirement of an identity, evaluated now from its state in Redis
 * with the engines' policy, or failing closed. The rules, in order:
 *
 * 1. Redis unreachable, the store not trustworthy (lost, unverified since Redis restarted,
 *    recovering, decided with another policy: store-trust.ts), the engine stalled or lagging (or its
 *    state unknown), or a state we cannot read: every tier gets the strictest requirement and
 *    `degraded: true`. Never an error a caller could mistake for "allow".
 * 2. No state (never seen, or forgotten): the policy's baseline, sequence 0. The store is known to
 *    be complete (rule 1), so no state really means nothing is known against the identity.
 * 3. Otherwise the evaluation of its state now, with the sequence of the engine's last decision.
 *    The state, not a stored decision, is the source: it cannot lag behind an expiry.
 * 4. While a Shared Signals transmitter's stream is not healthy (source-health.ts), the tiers it
 *    names and those above get the strictest requirement, `degraded: true` with
 *    `signal_source_unavailable`; the tiers below keep the evaluation.
 */
export class AssuranceReader {
  readonly #d: ReaderDeps;
  readonly #now: () => Date;

  constructor(deps: ReaderDeps) {
    this.#d = deps;
    this.#now = deps.clock ?? (() => new Date());
  }

  get policy(): Policy {
    return this.#d.policy;
  }

  /**
   * `caller`: a token bound to tenants sees only their identities (403 otherwise). `policy`: another
   * policy to evaluate the same state with (a what-if for a shadow policy); the engines' by default.
   * Every fail-closed rule holds the same.
   */
  async read(
    identityId: string,
    caller: TokenGrant | null = null,
    policy: Policy = this.#d.policy,
  ): Promise<AssuranceResponse> {
    const now = this.#now();
    try {
      return await this.#read(identityId, now, caller, policy);
    } catch (err) {
      if (err instanceof ApiProblem) throw err;
      // Whatever went wrong, the answer is the strictest requirement, never an error.
      this.#d.logger.error({ err }, 'assurance read failed; answering fail-closed');
      return this.failClosed(identityId, now, ['internal_error'], 0, policy);
    }
  }

  async #read(
    identityId: string,
    now: Date,
    caller: TokenGrant | null,
    policy: Policy,
  ): Promise<AssuranceResponse> {
    const reasons = healthReasons(this.#d.engineHealth());
    let record: IdentityRecord | null;
    let status: StoreStatus;
    try {
      ({ record, status } = await this.#d.store.readWithStatus(identityId, now.getTime()));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'state_corrupt') {
        this.#d.logger.error(
          { err: (err as Error).message },
          'stored state unreadable; answering fail-closed',
        );
        return this.failClosed(identityId, now, ['state_unreadable', ...reasons], 0, policy);
      }
      this.#d.logger.warn({ err: (err as Error).message }, 'Redis read failed; answering fail-closed');
      return this.failClosed(identityId, now, ['redis_unavailable', ...reasons], 0, policy);
    }
    checkTenant(caller, record);
    reasons.push(...this.#d.storeReasons(status));
    const sequence = record?.seq ?? 0;
    if (reasons.length > 0) return this.failClosed(identityId, now, reasons, sequence, policy);
    const state = record ? toIdentityState(record, now.getTime()) : emptyState(identityId);
    const evaluation = evaluate(policy, state, now, (err) => {
      this.#d.metrics.evaluationFailures.inc();
      this.#d.logger.error({ err }, 'policy evaluation failed; answering fail-closed');
    });
    const answer = this.#fromEvaluation(identityId, now, sequence, evaluation, policy);
    const floor = this.#d.sourceFloor?.();
    return floor === undefined ? answer : this.#sourceClosed(answer, floor.from, policy);
  }

  /** `answer` with `from` and every tier above it at its strictest (a source is unavailable). */
  #sourceClosed(answer: AssuranceResponse, from: Tier, policy: Policy): AssuranceResponse {
    this.#d.metrics.degraded.inc({ reason: 'signal_source_unavailable' });
    const closed = TIERS.slice(TIERS.indexOf(from));
    return {
      ...answer,
      degraded: true,
      degradedReasons: ['signal_source_unavailable'],
      // Not to be cached: the source may be back at the next read.
      validUntil: answer.computedAt,
      tiers: Object.fromEntries(
        TIERS.map((tier) => [
          tier,
          closed.includes(tier) ? strictestRequirement(policy, tier) : answer.tiers[tier],
        ]),
      ) as Record<Tier, TierRequirement>,
    };
  }

  #fromEvaluation(
    identityId: string,
    now: Date,
    sequence: number,
    e: Evaluation,
    policy: Policy,
  ): AssuranceResponse {
    return {
      identityId,
      degraded: false,
      degradedReasons: [],
      sequence,
      policyVersion: policy.version,
      policyDigest: policy.digest,
      computedAt: now.toISOString(),
      validUntil: e.validUntil,
      riskLevel: e.riskLevel,
      tiers: e.tiers,
    };
  }

  /**
   * Every tier at its strictest. `validUntil` equals `computedAt`: a fail-closed answer must not be
   * cached, the next read may already have fresh data.
   */
  failClosed(
    identityId: string,
    now: Date,
    reasons: readonly DegradedReason[],
    sequence: number,
    policy: Policy = this.#d.policy,
  ): AssuranceResponse {
    const unique = [...new Set(reasons)];
    for (const reason of unique) this.#d.metrics.degraded.inc({ reason });
    const tiers = Object.fromEntries(
      TIERS.map((tier) => [tier, strictestRequirement(policy, tier)]),
    ) as Record<Tier, TierRequirement>;
    const at = now.toISOString();
    return {
      identityId,
      degraded: true,
      degradedReasons: unique,
      sequence,
      policyVersion: policy.version,
      policyDigest: policy.digest,
      computedAt: at,
      validUntil: at,
      riskLevel: 'critical',
      tiers,
    };
  }
}
