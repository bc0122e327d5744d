import type { Completion } from '@assurance/policy';
import type { ChannelType, RiskLevel, Tier, TierRequirement } from '@assurance/schemas';

/**
 * Why an answer is degraded, as the client itself detects it. An HTTP answer may also carry the
 * reasons the API reported (its own `degradedReasons`), so {@link RequirementAnswer.degradedReasons}
 * is typed as plain strings.
 */
export const DEGRADED_REASONS = [
  /** HTTP: connection refused, DNS failure, reset: no answer at all. */
  'unreachable',
  /** HTTP: no complete answer within `timeoutMs`. */
  'timeout',
  /** HTTP: 5xx. */
  'server_error',
  /** HTTP: 429; the API sheds load. */
  'rate_limited',
  /** HTTP: an answer that is not what the contract says (bad JSON, failed validation, wrong identity…). */
  'bad_response',
  /** Topic: the view has not been caught up with the topic for longer than `maxStalenessMs`. */
  'stale_view',
  /** Topic: the view has not finished its first read of the topic yet (or could not start). */
  'not_ready',
  /** Topic: the view's consumer stopped for good; nothing new will arrive. */
  'view_failed',
  /** Topic: the latest message for this identity could not be read; an older decision might be outdated. */
  'invalid_decision',
  /** Topic: a message has waited for the engine longer than `maxStallMs` without it making progress. */
  'engine_stalled',
  /** Topic: the engine's offsets could not be sampled lately, so its progress is unknown. */
  'engine_unknown',
  /** Topic: the decision is past its `validUntil` by more than the grace: the engine did not renew it. */
  'decision_expired',
  /** Topic: the view reached `maxIdentities` and this identity is not in it: it may be one it had no room for. */
  'view_full',
  /** The API reported `degraded: true` without saying why. */
  'upstream_degraded',
] as const;

/** One {@link DEGRADED_REASONS} entry. */
export type DegradedReason = (typeof DEGRADED_REASONS)[number];

/** Where an answer came from: the HTTP API or the local view of the decisions topic. */
export type AnswerSource = 'http' | 'topic';

/**
 * What the user completed in this session, as the app reports it to {@link AssuranceClient.verify}.
 * `channel` is the device id, phone number or email the authenticator was completed on, in clear:
 * the API (HTTP mode) or the client with `channelHashSecret` (topic mode) hashes it. It matters only
 * where the tier accepts the authenticator on some of the identity's bindings alone.
 */
export type CompletedStepUp = Omit<Completion, 'channel'> & {
  readonly channel?: { readonly type: ChannelType; readonly value: string };
};

/** The requirement one action has for one identity right now. */
export interface RequirementAnswer {
  readonly identityId: string;
  readonly action: string;
  /** The action's tier (unknown actions are `critical`). */
  readonly tier: Tier;
  /** What the tier requires now. When `degraded`, the strictest requirement (a hold). */
  readonly requirement: TierRequirement;
  /** True when the client could not get a trustworthy answer and failed closed. */
  readonly degraded: boolean;
  /** Why it is degraded (empty when not). */
  readonly degradedReasons: readonly string[];
  /** The decision's sequence; 0 when the identity has no decision (the policy baseline) or when degraded without one. */
  readonly sequence: number;
  readonly source: AnswerSource;
  /** The decision's risk level; `critical` when degraded. */
  readonly riskLevel: RiskLevel | null;
  /** When the decision must be re-read at the latest (RFC 3339), when known. */
  readonly validUntil: string | null;
  /** Digest of the policy that produced the requirement, when known. */
  readonly policyDigest: string | null;
}

/**
 * Why a completion does not satisfy a requirement: the policy's `MissingCode`s, plus `degraded`
 * when the client failed closed. An HTTP answer may carry codes from a newer API, hence `string`.
 */
export type MissingRequirement = string;

/** The answer to "does what the user completed satisfy the requirement for this action?". */
export interface VerifyAnswer extends RequirementAnswer {
  /** True only when nothing is missing and the answer is not degraded. */
  readonly satisfied: boolean;
  /** What is missing, `degraded` first when the answer is degraded. Empty when satisfied. */
  readonly missing: readonly MissingRequirement[];
}

/** A snapshot of the client's health, for readiness probes and dashboards. */
export interface ClientHealth {
  readonly mode: AnswerSource;
  /** HTTP: always true once created. Topic: the first read of the topic is complete. */
  readonly ready: boolean;
  /** Topic: ms since the view was last known to hold everything on the topic; null before that or in HTTP mode. */
  readonly stalenessMs: number | null;
  /** True when answers given now would be degraded for that reason alone (stale, not ready, failed, closed). */
  readonly degraded: boolean;
  /** Topic: identities with a decision in the view. */
  readonly identities: number | null;
  /**
   * Topic: decision records refused since start, by reason (`bad_signature`, `unknown_key`,
   * `unsigned`, `tombstone`, `sequence_ahead`, `invalid_decision`, …); each failed its identity
   * closed. Export it as a metric: a forged record shows here first. Empty in HTTP mode.
   */
  readonly rejected: Readonly<Record<string, number>>;
  /** Topic: held decisions whose signature is not checked yet (checked in the background, or at their first lookup). */
  readonly unverified: number | null;
  readonly closed: boolean;
}

/**
 * What an app calls before a high-risk action. Both transports implement it; create one with
 * `createAssuranceClient` and share it across requests.
 */
export interface AssuranceClient {
  readonly mode: AnswerSource;
  /**
   * The requirement of `action` for `identityId` now. Never rejects for transient trouble: it
   * fails closed (strictest requirement, `degraded: true`).
   * @throws AssuranceClientError for configuration or programming errors only (bad arguments, 401,
   * 403, 404, closed client).
   */
  requirementFor(identityId: string, action: string): Promise<RequirementAnswer>;
  /**
   * The requirement and whether `completed` satisfies it, in one call. A degraded answer is never
   * satisfied.
   * @throws AssuranceClientError as {@link AssuranceClient.requirementFor}.
   */
  verify(identityId: string, action: string, completed: CompletedStepUp): Promise<VerifyAnswer>;
  /**
   * Resolves when the client can give non-degraded answers: at once over HTTP; after the first
   * read of the topic up to its high watermark in topic mode.
   * @throws AssuranceClientError `bootstrap_failed` if the view cannot start or `timeoutMs` passes first.
   */
  ready(options?: { timeoutMs?: number }): Promise<void>;
  /** The client's health now. */
  health(): ClientHealth;
  /** Stops consuming (topic mode) and refuses further calls. Idempotent. */
  close(): Promise<void>;
}
