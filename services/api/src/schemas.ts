import { MISSING_CODES } from '@assurance/policy';
import {
  ActiveSignal,
  Authenticator,
  Binding,
  BindingRef,
  Channel,
  ChannelRef,
  ChannelType,
  CompromiseSignalClear,
  CompromiseSignalRaise,
  IdentityId,
  OpaqueId,
  RecoveryMethod,
  RiskLevel,
  Tier,
  TierRequirement,
  Timestamp,
} from '@assurance/schemas';
import { z } from 'zod';

/**
 * Request and response schemas of the HTTP API. Handlers parse requests with them, tests parse
 * live responses with them, and the OpenAPI document is generated from them (openapi.ts), so the
 * three cannot disagree. Contract types (tiers, signals, bindings) come from `@assurance/schemas`.
 */

/** Why an answer carries the strictest requirement instead of the decision. */
export const DEGRADED_REASONS = [
  'redis_unavailable',
  'engine_stalled',
  'engine_lagging',
  'engine_lag_unknown',
  'store_lost',
  'store_unverified',
  'store_recovering',
  'policy_mismatch',
  'state_unreadable',
  'internal_error',
  'signal_source_unavailable',
] as const;
export const DegradedReason = z.enum(DEGRADED_REASONS);
export type DegradedReason = z.infer<typeof DegradedReason>;

/** Action names as the policy spells them (`payout.change`); the policy must name them (else 400). */
export const ActionName = z
  .string()
  .max(200)
  .regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/, 'action names are dotted snake_case, e.g. payout.change');

export const IdentityParams = z.strictObject({ id: IdentityId.describe('The identity id, URL-encoded') });

export const AssuranceQuery = z.strictObject({
  action: ActionName.optional().describe('Answer for this action only (its tier and requirement)'),
  policy: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,39}$/)
    .optional()
    .describe(
      'What-if: the answer of this shadow policy (SHADOW_POLICIES) for the same state, instead of the live one; needs the scope policy:read',
    ),
});

const Envelope = {
  identityId: IdentityId,
  degraded: z
    .boolean()
    .describe('True when the requirement is the strictest one because fresh data was not available'),
  degradedReasons: z.array(DegradedReason),
  sequence: z
    .number()
    .int()
    .nonnegative()
    .describe('Decision sequence; 0 when the engine has not decided yet'),
  policyVersion: z.string(),
  policyDigest: z.string(),
  computedAt: z.iso.datetime(),
  validUntil: z.iso.datetime().describe('Re-read after this instant'),
  riskLevel: RiskLevel,
};

export const TierRequirements = z.strictObject({
  low: TierRequirement,
  medium: TierRequirement,
  high: TierRequirement,
  critical: TierRequirement,
});

export const AssuranceResponse = z.strictObject({ ...Envelope, tiers: TierRequirements });
export type AssuranceResponse = z.infer<typeof AssuranceResponse>;

export const ActionAssuranceResponse = z.strictObject({
  ...Envelope,
  action: ActionName,
  tier: Tier,
  requirement: TierRequirement,
});
export type ActionAssuranceResponse = z.infer<typeof ActionAssuranceResponse>;

/** GET /v1/identities/{id}/assurance answers one of the two, depending on `?action=`. */
export const AssuranceAnswer = z.union([AssuranceResponse, ActionAssuranceResponse]);

export const Completion = z.strictObject({
  authenticator: Authenticator.optional(),
  /**
   * The channel the authenticator was completed on: the device id, phone number or email, as the
   * events name it. The API hashes it with the engine's secret; it decides only where the tier
   * accepts the authenticator on some of the identity's bindings alone.
   */
  channel: Channel.optional(),
  recoveryMethod: RecoveryMethod.optional(),
  liveness: z.boolean().optional(),
  verifiedCallback: z.boolean().optional(),
  authenticatedAt: z.iso.datetime({ offset: true }).optional(),
});

export const VerifyRequest = z.strictObject({
  identityId: IdentityId,
  action: ActionName,
  completed: Completion,
});
export type VerifyRequest = z.infer<typeof VerifyRequest>;

export const MissingCode = z.enum(MISSING_CODES);

export const VerifyResponse = z.strictObject({
  satisfied: z.boolean(),
  missing: z.array(MissingCode),
  action: ActionName,
  tier: Tier,
  requirement: TierRequirement,
  degraded: z.boolean(),
  degradedReasons: z.array(DegradedReason),
  sequence: z.number().int().nonnegative(),
  /** The binding `completed.channel` was judged as (its keyed hash); absent when none was judged. */
  channel: BindingRef.optional(),
});
export type VerifyResponse = z.infer<typeof VerifyResponse>;

const AdminReason = z.strictObject({ code: z.string(), admin: z.string() });

export const ExplainedSignal = z.strictObject({
  ...ActiveSignal.shape,
  /** The channel type when the signal is about a channel, else null. */
  channelType: ChannelType.nullable(),
  /** The policy rules this signal makes fire, with their reason codes and operator texts. */
  rules: z.array(z.strictObject({ id: z.string(), reasons: z.array(AdminReason) })),
});

export const ExplainedBinding = z.strictObject({
  channelType: ChannelType,
  channelRef: ChannelRef,
  uses: z.strictObject({
    authenticators: Binding.shape.authenticators,
    recovery: Binding.shape.recovery,
  }),
  boundAt: z.iso.datetime(),
  recoverableVia: Binding.shape.recoverableVia,
});

export const SignalsResponse = z.strictObject({
  identityId: IdentityId,
  degraded: z.boolean(),
  degradedReasons: z.array(DegradedReason),
  sequence: z.number().int().nonnegative(),
  policyVersion: z.string(),
  policyDigest: z.string(),
  computedAt: z.iso.datetime(),
  riskLevel: RiskLevel,
  bindingsKnown: z.boolean(),
  signals: z.array(ExplainedSignal),
  bindings: z.array(ExplainedBinding),
  /** Every reason behind the current evaluation, including the engine's own (holds, tainted recovery). */
  reasons: z.array(z.strictObject({ code: z.string(), admin: z.string(), user: z.string() })),
});
export type SignalsResponse = z.infer<typeof SignalsResponse>;

/** The envelope fields the server fills when a SOC tool leaves them out. */
const OptionalEnvelope = {
  eventId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,100}$/)
    .optional()
    .describe(
      "Defaults to a new UUID; send your own to make retries idempotent. Stored as `api.<token name>.<eventId>`: no caller can use up another source's ids",
    ),
  occurredAt: Timestamp.optional().describe(
    'Defaults to the time the API received the request; at most a minute ahead of it',
  ),
  raisedBy: CompromiseSignalRaise.shape.raisedBy
    .optional()
    .describe('Who raises or clears it: always the name of the calling token (anything else is refused)'),
};

/**
 * A raise or clear as SOC tools send it: the contract's event with an optional envelope. Built from
 * the contract's shapes; its cross-field checks (expiresAt after occurredAt) run when the filled-in
 * event is parsed with `CompromiseSignalEvent` itself.
 */
function withoutSource<T extends { source: unknown }>(shape: T): Omit<T, 'source'> {
  const { source: _source, ...rest } = shape;
  return rest;
}

export const SignalRequest = z.discriminatedUnion('op', [
  // `source` is the API's own: a caller cannot pose as another producer.
  z.strictObject({ ...withoutSource(CompromiseSignalRaise.shape), ...OptionalEnvelope }),
  z.strictObject({ ...withoutSource(CompromiseSignalClear.shape), ...OptionalEnvelope }),
]);
export type SignalRequest = z.input<typeof SignalRequest>;

export const SignalAccepted = z.strictObject({
  eventId: OpaqueId,
  topic: z.string(),
  partition: z.number().int().nonnegative().optional(),
  offset: z.string().optional(),
});
export type SignalAccepted = z.infer<typeof SignalAccepted>;

export const Health = z.strictObject({ status: z.literal('ok') });

export const ReadinessCheck = z.strictObject({ ok: z.boolean(), detail: z.string() });
export const Readiness = z.strictObject({
  status: z.enum(['ready', 'not_ready']),
  /** One entry per dependency; `detail` says what was seen. */
  checks: z.strictObject({
    kafka: ReadinessCheck,
    redis: ReadinessCheck,
    /** The store carries a fingerprint, was verified since Redis started, is complete, and decided with this policy. */
    store: ReadinessCheck,
    registry: ReadinessCheck,
    /** Stalled, lagging beyond the bound, or a stage with no consumer: not ready. */
    engine: ReadinessCheck,
  }),
});
export type Readiness = z.infer<typeof Readiness>;

/** RFC 8935 §2.3: why a pushed Security Event Token was refused. */
export const SetErrorResponse = z.strictObject({
  err: z
    .enum([
      'invalid_request',
      'invalid_key',
      'invalid_issuer',
      'invalid_audience',
      'authentication_failed',
      'access_denied',
      'invalid_state',
    ])
    .describe('RFC 8935 error code'),
  description: z.string().describe('Why, for the transmitter’s operators'),
});

export const TransmitterParams = z.strictObject({
  transmitter: z.string().max(40).describe('The transmitter’s name in SSF_TRANSMITTERS_FILE'),
});
