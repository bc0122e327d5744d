import type { Logger } from '@assurance/core';
import type { EngineHealth } from '@assurance/kafka';
import type { Evaluation, Policy } from '@assurance/policy';
import { evaluate, strictestRequirement } from '@assurance/policy';
import type { SignalStore } from '@assurance/redis';
import { emptyState, toIdentityState } from '@assurance/redis';
import { Decision, TIERS, type Tier, type TierRequirement } from '@assurance/schemas';
import { healthReasons } from './engine-health.ts';
import type { ApiMetrics } from './metrics.ts';
import type { AssuranceResponse, DegradedReason } from './schemas.ts';

export interface ReaderDeps {
  readonly store: SignalStore;
  readonly policy: Policy;
  /** The engine's health as last sampled in the background. */
  readonly engineHealth: () => EngineHealth;
  readonly maxDecisionAgeMs: number;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly clock?: () => Date;
}

function material(riskLevel: string, tiers: unknown): string {
  return JSON.stringify({ riskLevel, tiers });
}

/**
 * The read path: the current requirement of an identity, from its decision in Redis, or failing
 * closed. The rules, in order:
 *
 * 1. Redis unreachable, the engine stalled or lagging (or its state unknown), or a decision we cannot read:
 *    every tier gets the strictest requirement and `degraded: true`. Never an error a caller could
 *    mistake for "allow".
 * 2. No decision yet: the policy's baseline (its evaluation of an empty state), sequence 0.
 * 3. A decision within its `validUntil`: the decision.
 * 4. A decision past its `validUntil` ("re-read"): the API re-reads the identity's state and
 *    evaluates it with the same policy at now, as the engine would. Most often nothing changed
 *    (the staleness bound), and that evaluation is served. If it differs, the engine owes a
 *    re-decision (an expiry its sweeper has not handled yet): tolerated for `MAX_DECISION_AGE`
 *    after `validUntil`, then `decision_stale`, failing closed.
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

  async read(identityId: string): Promise<AssuranceResponse> {
    const now = this.#now();
    try {
      return await this.#read(identityId, now);
    } catch (err) {
      // Whatever went wrong, the answer is the strictest requirement, never an error.
      this.#d.logger.error({ err }, 'assurance read failed; answering fail-closed');
      return this.failClosed(identityId, now, ['internal_error'], 0);
    }
  }

  async #read(identityId: string, now: Date): Promise<AssuranceResponse> {
    const reasons = healthReasons(this.#d.engineHealth());
    let raw: string | null;
    try {
      raw = await this.#d.store.getDecision(identityId);
    } catch (err) {
      this.#d.logger.warn({ err: (err as Error).message }, 'Redis read failed; answering fail-closed');
      return this.failClosed(identityId, now, ['redis_unavailable', ...reasons], 0);
    }
    const decision = raw === null ? null : this.#parse(raw);
    if (decision === undefined)
      return this.failClosed(identityId, now, ['decision_unreadable', ...reasons], 0);
    const sequence = decision?.sequence ?? 0;
    if (reasons.length > 0) return this.failClosed(identityId, now, reasons, sequence);

    if (decision === null) {
      return this.#fromEvaluation(identityId, now, 0, evaluate(this.#d.policy, emptyState(identityId), now));
    }
    const validUntilMs = Date.parse(decision.validUntil);
    if (now.getTime() <= validUntilMs) {
      return {
        identityId,
        degraded: false,
        degradedReasons: [],
        sequence,
        policyVersion: decision.policyVersion,
        policyDigest: decision.policyDigest,
        computedAt: decision.computedAt,
        validUntil: decision.validUntil,
        riskLevel: decision.riskLevel,
        tiers: decision.tiers,
      };
    }

    let evaluation: Evaluation;
    try {
      const loaded = await this.#d.store.loadIdentity(identityId);
      evaluation = evaluate(this.#d.policy, toIdentityState(identityId, loaded, now.getTime()), now);
    } catch (err) {
      this.#d.logger.warn({ err: (err as Error).message }, 'Redis read failed; answering fail-closed');
      return this.failClosed(identityId, now, ['redis_unavailable'], sequence);
    }
    const samePolicy = decision.policyDigest === this.#d.policy.digest;
    const owed =
      !samePolicy ||
      material(evaluation.riskLevel, evaluation.tiers) !== material(decision.riskLevel, decision.tiers);
    if (owed && now.getTime() - validUntilMs > this.#d.maxDecisionAgeMs) {
      return this.failClosed(identityId, now, ['decision_stale'], sequence);
    }
    return this.#fromEvaluation(identityId, now, sequence, evaluation);
  }

  /** A stored decision that does not match the contract is treated as unreadable, never guessed at. */
  #parse(raw: string): Decision | undefined {
    try {
      const parsed = Decision.safeParse(JSON.parse(raw));
      if (parsed.success) return parsed.data;
      this.#d.logger.error({ issues: parsed.error.issues.slice(0, 3) }, 'stored decision does not parse');
    } catch (err) {
      this.#d.logger.error({ err }, 'stored decision is not JSON');
    }
    return undefined;
  }

  #fromEvaluation(identityId: string, now: Date, sequence: number, e: Evaluation): AssuranceResponse {
    return {
      identityId,
      degraded: false,
      degradedReasons: [],
      sequence,
      policyVersion: this.#d.policy.version,
      policyDigest: this.#d.policy.digest,
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
  ): AssuranceResponse {
    const unique = [...new Set(reasons)];
    for (const reason of unique) this.#d.metrics.degraded.inc({ reason });
    const tiers = Object.fromEntries(
      TIERS.map((tier) => [tier, strictestRequirement(this.#d.policy, tier)]),
    ) as Record<Tier, TierRequirement>;
    const at = now.toISOString();
    return {
      identityId,
      degraded: true,
      degradedReasons: unique,
      sequence,
      policyVersion: this.#d.policy.version,
      policyDigest: this.#d.policy.digest,
      computedAt: at,
      validUntil: at,
      riskLevel: 'critical',
      tiers,
    };
  }
}
