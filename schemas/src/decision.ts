import { z } from 'zod';
import { ActiveSignal, ChannelRef } from './state.ts';
import { Authenticator, ChannelType, Outcome, RecoveryMethod, RiskLevel, Tier } from './vocabulary.ts';

/** A reason code such as `sim_swap.phone_bound` — stable, machine-readable, documented in the policy. */
export const ReasonCode = z.string().regex(/^[a-z0-9_.]{1,80}$/);

/** One of the identity's bindings, by channel type and keyed hash (never the channel's value). */
export const BindingRef = z.object({ channelType: ChannelType, channelRef: ChannelRef });
export type BindingRef = z.infer<typeof BindingRef>;

/**
 * The bindings on which an authenticator excluded as a class still counts: every exclusion behind it
 * was aimed at other bindings of the same authenticator (a channel under suspicion), and these are
 * known bindings none of them touches. Only a verification that names the channel actually used
 * (`completed.channel`) can take this exception; a reader that ignores it sees the class excluded.
 */
export const AcceptableOn = z.array(BindingRef).min(1).max(32);

export const AuthenticatorExclusion = z.object({
  authenticator: Authenticator,
  reasons: z.array(ReasonCode).min(1),
  acceptableOn: AcceptableOn.optional(),
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
  /**
   * Who made the change, when the event names someone: the `raisedBy` of a SOC raise or clear (the
   * API sets it to the calling token's name). The audit record so shows who cleared a signal too,
   * once the signal itself is gone.
   */
  actor: z.string().max(200).optional(),
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

/**
 * One tier of a compact decision (format 2, docs/contract.md#decision-v2): its outcome, reasons and
 * hold, and the flags that differ from the policy's own requirement for the tier. Everything else
 * follows from the policy and the decision's exclusions. `requirement` carries the whole
 * requirement instead, for a tier that cannot be written relative to the policy.
 */
export const CompactTier = z.object({
  outcome: Outcome,
  reasons: z.array(ReasonCode),
  requirePhishingResistant: z.boolean().optional(),
  requireLiveness: z.boolean().optional(),
  requireVerifiedCallback: z.boolean().optional(),
  holdUntil: z.iso.datetime().optional(),
  requirement: TierRequirement.optional(),
});
export type CompactTier = z.infer<typeof CompactTier>;

/**
 * A decision in format 2: the v1 envelope; tiers written relative to the policy named by
 * `policyDigest` (a reader expands them with that policy, and fails closed without it); the
 * identity's own exclusions once, each reaching its tier `from` and every tier above; and the
 * authenticators the identity has enrolled when its bindings are known. What the policy's tier
 * excludes by itself (an authenticator it does not accept, one that required phishing resistance
 * rules out, a recovery method it does not allow) is implied, with its standing reason.
 */
export const DecisionV2 = Decision.omit({ tiers: true }).extend({
  format: z.literal(2),
  tiers: z.object({
    low: CompactTier,
    medium: CompactTier,
    high: CompactTier,
    critical: CompactTier,
  }),
  exclusions: z
    .array(
      z.object({
        authenticator: Authenticator,
        from: Tier,
        reasons: z.array(ReasonCode).min(1),
        /** Where several entries reach a tier, the authenticator counts only on bindings all of them list. */
        acceptableOn: AcceptableOn.optional(),
      }),
    )
    .optional(),
  recoveryExclusions: z
    .array(z.object({ method: RecoveryMethod, from: Tier, reasons: z.array(ReasonCode).min(1) }))
    .optional(),
  enrolled: z.array(Authenticator).optional(),
});
export type DecisionV2 = z.infer<typeof DecisionV2>;

/** The tier part of a format 2 decision: what @assurance/policy's compactTiers writes. */
export type CompactTiers = Pick<DecisionV2, 'tiers' | 'exclusions' | 'recoveryExclusions'>;

export const AuditReason = z.object({
  code: ReasonCode,
  /** For operators and policy authors: may name channels by type, never by value. */
  admin: z.string().max(500),
  /** Safe to show the end user. */
  user: z.string().max(300),
});

export const AuditRecord = z
  .object({
    identityId: z.string().min(1).max(200),
    tenantId: z.string().max(200).nullable(),
    sequence: z.number().int().positive(),
    /**
     * The decision this one follows, by sequence and substance digest (its full text is the `after`
     * of that sequence's audit record); null for an identity's first decision in a store.
     */
    previous: z
      .object({ sequence: z.number().int().positive(), digest: z.string().min(1).max(64) })
      .nullable(),
    /** The decision as published in format 1 (absent when it was published in format 2). */
    after: Decision.optional(),
    /** The decision as published in format 2 (absent when it was published in format 1). */
    afterV2: DecisionV2.optional(),
    reasons: z.array(AuditReason),
    trigger: Trigger,
    policyVersion: z.string(),
    policyDigest: z.string(),
    recordedAt: z.iso.datetime(),
  })
  .refine((a) => (a.after === undefined) !== (a.afterV2 === undefined), {
    message: 'an audit record carries its decision once: after (format 1) or afterV2 (format 2)',
    path: ['after'],
  });
export type AuditRecord = z.infer<typeof AuditRecord>;
