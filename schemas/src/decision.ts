import { z } from 'zod';
import { ActiveSignal } from './state.ts';
import { Authenticator, Outcome, RecoveryMethod, RiskLevel } from './vocabulary.ts';

/** A reason code such as `sim_swap.phone_bound` — stable, machine-readable, documented in the policy. */
export const ReasonCode = z.string().regex(/^[a-z0-9_.]{1,80}$/);

export const AuthenticatorExclusion = z.object({
  authenticator: Authenticator,
  reasons: z.array(ReasonCode).min(1),
});

export const RecoveryExclusion = z.object({
  method: RecoveryMethod,
  reasons: z.array(ReasonCode).min(1),
});

export const TierRequirement = z.object({
  outcome: Outcome,
  acceptableAuthenticators: z.array(Authenticator),
  excludedAuthenticators: z.array(AuthenticatorExclusion),
  requirePhishingResistant: z.boolean(),
  requireLiveness: z.boolean(),
  requireVerifiedCallback: z.boolean(),
  recovery: z.object({
    allowed: z.array(RecoveryMethod),
    excluded: z.array(RecoveryExclusion),
  }),
  holdUntil: z.iso.datetime().optional(),
  /** Acceptable authenticators the identity has enrolled; absent when bindings are unknown. */
  enrolledAcceptable: z.array(Authenticator).optional(),
  /** RFC 9470 step-up hints for resource servers. */
  acrValues: z.array(z.string().max(200)),
  maxAge: z.number().int().nonnegative(),
  /** Reason codes behind this tier's outcome and exclusions. */
  reasons: z.array(ReasonCode),
});
export type TierRequirement = z.infer<typeof TierRequirement>;

export const Trigger = z.object({
  eventId: z.string().max(200),
  topic: z.string().max(249),
  occurredAt: z.iso.datetime(),
});
export type Trigger = z.infer<typeof Trigger>;

export const Decision = z.object({
  identityId: z.string().min(1).max(200),
  tenantId: z.string().max(200).nullable(),
  sequence: z.number().int().positive(),
  policyVersion: z.string(),
  policyDigest: z.string(),
  computedAt: z.iso.datetime(),
  validUntil: z.iso.datetime(),
  riskLevel: RiskLevel,
  tiers: z.object({
    low: TierRequirement,
    medium: TierRequirement,
    high: TierRequirement,
    critical: TierRequirement,
  }),
  signals: z.array(ActiveSignal),
  bindingsKnown: z.boolean(),
  trigger: Trigger,
});
export type Decision = z.infer<typeof Decision>;

export const AuditReason = z.object({
  code: ReasonCode,
  /** For operators and policy authors: may name channels by type, never by value. */
  admin: z.string().max(500),
  /** Safe to show the end user. */
  user: z.string().max(300),
});

export const AuditRecord = z.object({
  identityId: z.string().min(1).max(200),
  tenantId: z.string().max(200).nullable(),
  sequence: z.number().int().positive(),
  /**
   * The decision this one follows, by sequence and substance digest (its full text is the `after`
   * of that sequence's audit record); null for an identity's first decision in a store.
   */
  previous: z.object({ sequence: z.number().int().positive(), digest: z.string().min(1).max(64) }).nullable(),
  after: Decision,
  reasons: z.array(AuditReason),
  trigger: Trigger,
  policyVersion: z.string(),
  policyDigest: z.string(),
  recordedAt: z.iso.datetime(),
});
export type AuditRecord = z.infer<typeof AuditRecord>;
