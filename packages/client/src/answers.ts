import { type Policy, strictestRequirement, verifyCompletion } from '@assurance/policy';
import { AUTHENTICATORS, type BindingRef, Channel, RECOVERY_METHODS, type Tier } from '@assurance/schemas';
import { AssuranceClientError } from './errors.ts';
import type { AnswerSource, CompletedStepUp, RequirementAnswer, VerifyAnswer } from './types.ts';

/**
 * Pure pieces shared by both transports: argument checks, the fail-closed answer, and verification
 * of a completion against an answer (degraded answers are never satisfied).
 */

/** The `missing` code every degraded verification starts with. */
export const DEGRADED_MISSING = 'degraded';

/** Longest identity id the contract allows (`IdentityId`). */
const IDENTITY_MAX = 200;
/** Action names as the policy spells them (dotted snake_case, e.g. `payout.change`), as the API checks them. */
const ACTION = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;
const ACTION_MAX = 200;

/**
 * Rejects arguments no transport could answer for: they are the caller's bug, not an outage, and
 * both modes reject the same ones (the API answers 400 to them).
 * @throws AssuranceClientError `invalid_request`.
 */
export function checkArguments(identityId: unknown, action: unknown): void {
  if (typeof identityId !== 'string' || identityId.length === 0 || identityId.length > IDENTITY_MAX) {
    throw new AssuranceClientError('invalid_request', `identityId must be 1..${IDENTITY_MAX} characters`);
  }
  if (typeof action !== 'string' || action.length > ACTION_MAX || !ACTION.test(action)) {
    throw new AssuranceClientError(
      'invalid_request',
      'action must be a dotted snake_case name such as payout.change (at most 200 characters)',
    );
  }
}

/**
 * The topic mode answers from its own copy of the policy, so it refuses what the policy does not
 * name, exactly as the API does (400 `unknown-action`).
 * @throws AssuranceClientError `unknown_action`.
 */
export function checkAction(policy: Policy, action: string): Tier {
  const tier = policy.tierOf(action);
  if (tier === undefined) {
    throw new AssuranceClientError(
      'unknown_action',
      `unknown action "${action}"; the policy knows: ${policy.actionNames.join(', ')}`,
      { knownActions: policy.actionNames },
    );
  }
  return tier;
}

/**
 * The completion as the transports use it: only the five known members, checked for type, so both
 * modes accept and refuse the same input (the API refuses unknown members and wrong types with 400).
 * @throws AssuranceClientError `invalid_request`.
 */
export function checkCompletion(completed: unknown): CompletedStepUp {
  if (completed === undefined || completed === null) return {};
  if (typeof completed !== 'object' || Array.isArray(completed)) {
    throw new AssuranceClientError('invalid_request', 'completed must be an object');
  }
  const c = completed as Record<string, unknown>;
  const out: { -readonly [K in keyof CompletedStepUp]: CompletedStepUp[K] } = {};
  const bad = (what: string): never => {
    throw new AssuranceClientError('invalid_request', `completed.${what}`);
  };
  if (c.authenticator !== undefined) {
    if (!(AUTHENTICATORS as readonly unknown[]).includes(c.authenticator))
      bad('authenticator is not one of the v1 authenticators');
    out.authenticator = c.authenticator as NonNullable<CompletedStepUp['authenticator']>;
  }
  if (c.recoveryMethod !== undefined) {
    if (!(RECOVERY_METHODS as readonly unknown[]).includes(c.recoveryMethod))
      bad('recoveryMethod is not one of the v1 recovery methods');
    out.recoveryMethod = c.recoveryMethod as NonNullable<CompletedStepUp['recoveryMethod']>;
  }
  for (const flag of ['liveness', 'verifiedCallback'] as const) {
    if (c[flag] === undefined) continue;
    if (typeof c[flag] !== 'boolean') bad(`${flag} must be a boolean`);
    out[flag] = c[flag] as boolean;
  }
  if (c.channel !== undefined) {
    // The events' own normalization, so a phone written either way hashes to the same binding.
    const channel = Channel.safeParse(c.channel);
    if (!channel.success)
      bad(
        `channel must be {type, value} with a valid value: ${channel.error.issues[0]?.message ?? 'invalid'}`,
      );
    else out.channel = channel.data;
  }
  if (c.authenticatedAt !== undefined) {
    if (typeof c.authenticatedAt !== 'string' || Number.isNaN(Date.parse(c.authenticatedAt))) {
      bad('authenticatedAt must be an RFC 3339 time');
    }
    out.authenticatedAt = c.authenticatedAt as string;
  }
  return out;
}

/**
 * The answer given when no trustworthy one is available: the tier the local policy maps the action
 * to, at its strictest (a hold only in-person recovery lifts), `degraded: true` with `reasons`.
 */
export function failClosedAnswer(
  policy: Policy,
  source: AnswerSource,
  identityId: string,
  action: string,
  reasons: readonly string[],
  now: Date,
): RequirementAnswer {
  // The API knows the actions; an action this copy of the policy lacks gets the strictest tier.
  const tier: Tier = policy.tierOf(action) ?? 'critical';
  return {
    identityId,
    action,
    tier,
    requirement: strictestRequirement(policy, tier),
    degraded: true,
    degradedReasons: reasons.length > 0 ? [...reasons] : ['upstream_degraded'],
    sequence: 0,
    source,
    riskLevel: 'critical',
    // Re-read at once: a degraded answer is valid for nothing beyond this call.
    validUntil: now.toISOString(),
    policyDigest: policy.digest,
  };
}

/**
 * Checks `completed` against the answer's requirement with the policy's `verifyCompletion`, its
 * channel judged as `channel` (the binding it hashes to; not judged without one). A
 * degraded answer is never satisfied, even if what the user did would meet the strictest
 * requirement: degraded means "we do not know", and the strictest requirement is a hold anyway.
 */
export function verifyAgainst(
  answer: RequirementAnswer,
  completed: CompletedStepUp,
  now: Date,
  channel?: BindingRef,
): VerifyAnswer {
  const { channel: _clear, ...rest } = completed;
  const verification = verifyCompletion(answer.requirement, channel ? { ...rest, channel } : rest, now);
  if (answer.degraded) {
    return {
      ...answer,
      satisfied: false,
      missing: [DEGRADED_MISSING, ...verification.missing],
    };
  }
  return { ...answer, satisfied: verification.satisfied, missing: verification.missing };
}

/**
 * Merges the API's verdict with the client's own check of the same requirement: satisfied only
 * when both say so and the answer is not degraded, with the union of what each found missing.
 * The local check guards against an API answer that contradicts its own requirement.
 */
export function mergeVerdicts(
  answer: RequirementAnswer,
  remote: {
    readonly satisfied: boolean;
    readonly missing: readonly string[];
    readonly channel?: BindingRef | undefined;
  },
  completed: CompletedStepUp,
  now: Date,
): VerifyAnswer {
  // The API's hash of the reported channel stands in for the secret this side does not hold.
  const local = verifyAgainst(answer, completed, now, remote.channel);
  const missing = [...new Set([...local.missing, ...remote.missing])];
  const satisfied = remote.satisfied && local.satisfied && missing.length === 0;
  return { ...answer, satisfied, missing: satisfied ? [] : missing };
}
