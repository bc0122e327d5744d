import {
  type Authenticator,
  type BindingRef,
  PHISHING_RESISTANT,
  type RecoveryMethod,
  type TierRequirement,
} from './contract.ts';

/** What the user just completed, as the app reports it. */
export interface Completion {
  authenticator?: Authenticator;
  /**
   * The binding the authenticator was completed on (the device, phone or email actually used), by
   * its keyed hash. Needed only where the tier accepts the authenticator on some bindings alone.
   */
  channel?: BindingRef;
  recoveryMethod?: RecoveryMethod;
  liveness?: boolean;
  verifiedCallback?: boolean;
  /** RFC 3339 time of the authentication; compared with the tier's `maxAge`. */
  authenticatedAt?: string;
}

/** Why a completion falls short, in a fixed order. */
export const MISSING_CODES = [
  'action_denied',
  'action_on_hold',
  'authenticator_required',
  'authenticator_not_acceptable',
  'channel_required',
  'channel_not_acceptable',
  'phishing_resistant_required',
  'liveness_required',
  'verified_callback_required',
  'reauthentication_required',
  'recovery_method_not_allowed',
] as const;
/** One reason a completion does not satisfy a requirement. */
export type MissingCode = (typeof MISSING_CODES)[number];

/** The answer to "did what the user completed satisfy the requirement?". */
export interface Verification {
  satisfied: boolean;
  missing: MissingCode[];
}

/** Clock skew tolerated for an `authenticatedAt` slightly in the future. */
const FUTURE_SKEW_MS = 60_000;

function stale(requirement: TierRequirement, authenticatedAt: string | undefined, nowMs: number): boolean {
  if (authenticatedAt === undefined) return true;
  const at = Date.parse(authenticatedAt);
  // Unreadable times and times from the future are not evidence of a fresh authentication.
  if (Number.isNaN(at) || Number.isNaN(nowMs) || at > nowMs + FUTURE_SKEW_MS) return true;
  return nowMs - at > requirement.maxAge * 1000;
}

/**
 * Checks a completed step-up against a tier's requirement. `allow` needs nothing; `hold` and `deny`
 * are never satisfied by anything the user does; `step_up` needs an acceptable authenticator within
 * `maxAge` plus whatever liveness or callback the tier demands. An authenticator the tier excludes as a
 * class counts only on a binding its exclusion lists, named by `channel`. A recovery method, when reported,
 * must be one the tier allows. Anything unrecognised fails closed.
 */
export function verifyCompletion(
  requirement: TierRequirement,
  completed: Completion,
  now: Date,
): Verification {
  const missing = new Set<MissingCode>();
  const nowMs = now.getTime();
  switch (requirement.outcome) {
    case 'allow':
      break;
    case 'step_up': {
      const { authenticator } = completed;
      if (authenticator === undefined) {
        missing.add('authenticator_required');
      } else {
        if (!requirement.acceptableAuthenticators.includes(authenticator)) {
          const onlyOn = requirement.excludedAuthenticators.find(
            (x) => x.authenticator === authenticator,
          )?.acceptableOn;
          const { channel } = completed;
          if (onlyOn === undefined) missing.add('authenticator_not_acceptable');
          else if (channel === undefined) missing.add('channel_required');
          else if (
            !onlyOn.some((b) => b.channelType === channel.channelType && b.channelRef === channel.channelRef)
          )
            missing.add('channel_not_acceptable');
        }
        if (requirement.requirePhishingResistant && !PHISHING_RESISTANT.includes(authenticator)) {
          missing.add('phishing_resistant_required');
        }
      }
      if (requirement.requireLiveness && completed.liveness !== true) missing.add('liveness_required');
      if (requirement.requireVerifiedCallback && completed.verifiedCallback !== true) {
        missing.add('verified_callback_required');
      }
      if (stale(requirement, completed.authenticatedAt, nowMs)) missing.add('reauthentication_required');
      break;
    }
    case 'hold':
      missing.add('action_on_hold');
      break;
    default:
      missing.add('action_denied');
  }
  if (
    completed.recoveryMethod !== undefined &&
    !requirement.recovery.allowed.includes(completed.recoveryMethod)
  ) {
    missing.add('recovery_method_not_allowed');
  }
  const ordered = MISSING_CODES.filter((code) => missing.has(code));
  return { satisfied: ordered.length === 0, missing: ordered };
}
