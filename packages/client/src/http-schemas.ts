import { BindingRef, Decision, ReasonCode, RiskLevel, Tier, TierRequirement } from '@assurance/schemas';

/**
 * zod schemas of the HTTP API's answers, built from the v1 contract's own schemas so the two cannot
 * drift. The client depends on `@assurance/schemas` rather than on zod itself, so the few primitives
 * needed are taken from contract fields of the right kind (a string, a boolean, a non-negative
 * integer, an RFC 3339 instant).
 */
const Text = Decision.shape.policyVersion;
const Flag = Decision.shape.bindingsKnown;
const Count = TierRequirement.shape.maxAge;
const Instant = Decision.shape.computedAt;

/** Fields both answers carry. Unknown extra fields are dropped, so the API can add fields. */
const Answer = Decision.pick({ identityId: true }).extend({
  action: Text.min(1).max(200),
  tier: Tier,
  requirement: TierRequirement,
  degraded: Flag,
  degradedReasons: ReasonCode.array().max(32),
  /** 0 when the identity has no decision yet. */
  sequence: Count,
});

/** `GET /v1/identities/{id}/assurance?action=X` → 200. */
export const RequirementResponse = Answer.extend({
  policyVersion: Text.max(200).nullish(),
  policyDigest: Text.max(200).nullish(),
  computedAt: Instant.nullish(),
  validUntil: Instant.nullish(),
  riskLevel: RiskLevel.nullish(),
});

/** `POST /v1/assurance/verify` → 200. `satisfied` must agree with `missing` being empty. */
export const VerifyResponse = Answer.partial({ identityId: true })
  .extend({
    satisfied: Flag,
    missing: ReasonCode.array().max(32),
    /** The binding the API judged `completed.channel` as. */
    channel: BindingRef.optional(),
  })
  .refine((r) => r.satisfied === (r.missing.length === 0), {
    message: 'satisfied must be true exactly when nothing is missing',
  });
