/**
 * Whether a transmitter's stream is known to be healthy, from what the API replicas recorded
 * (packages/redis source-health.ts). Unknown is not healthy: a transmitter that may have stopped
 * telling us about takeovers is treated as one that might be hiding one.
 */
export type Unhealthy =
  | 'paused'
  | 'disabled'
  | 'status_unknown'
  | 'verification_overdue'
  | 'verification_failed';

export interface HealthFacts {
  readonly status: string | undefined;
  readonly statusAt: number | undefined;
  readonly verifiedAt: number | undefined;
  readonly verificationFailedAt: number | undefined;
}

export interface HealthRules {
  /** Its status is read through the management API: it must have been read within `statusMaxAgeMs`. */
  readonly statusRead: boolean;
  readonly statusMaxAgeMs: number;
  /** Verification asked for: one must have come back within `maxAgeMs`. */
  readonly verify: { readonly maxAgeMs: number } | undefined;
}

/** Undefined when healthy; otherwise the first reason it is not. */
export function unhealthy(facts: HealthFacts, rules: HealthRules, now: number): Unhealthy | undefined {
  if (facts.status === 'paused' || facts.status === 'disabled') return facts.status;
  if (facts.status !== undefined && facts.status !== 'enabled') return 'status_unknown';
  if (rules.statusRead && (facts.statusAt === undefined || now - facts.statusAt > rules.statusMaxAgeMs))
    return 'status_unknown';
  if (rules.verify) {
    if (facts.verificationFailedAt !== undefined && (facts.verifiedAt ?? 0) < facts.verificationFailedAt)
      return 'verification_failed';
    if (facts.verifiedAt === undefined || now - facts.verifiedAt > rules.verify.maxAgeMs)
      return 'verification_overdue';
  }
  return undefined;
}
