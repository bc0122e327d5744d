import { AUTHENTICATORS, RECOVERY_METHODS, type Tier, type TierRequirement } from './contract.ts';
import type { Policy } from './load.ts';

/** Reason code used whenever the strictest requirement stands in for a real evaluation. */
export const FAIL_CLOSED = 'policy.fail_closed';

/**
 * The strictest requirement a tier can have, for callers that cannot evaluate (stale view, service
 * unreachable, evaluation error): a hold that nothing but in-person recovery lifts. It is a hold
 * rather than a deny so a legitimate user always has a way forward.
 */
export function strictestRequirement(policy: Policy, tier: Tier): TierRequirement {
  let acrValues: string[] = [];
  try {
    const baseline = policy.tiers[tier];
    acrValues = [...(baseline.acrValuesPhishingResistant ?? baseline.acrValues)];
  } catch {
    // A broken policy object must not stop us from failing closed.
  }
  return {
    outcome: 'hold',
    acceptableAuthenticators: [],
    excludedAuthenticators: AUTHENTICATORS.map((authenticator) => ({
      authenticator,
      reasons: [FAIL_CLOSED],
    })),
    requirePhishingResistant: true,
    requireLiveness: true,
    requireVerifiedCallback: true,
    recovery: {
      allowed: ['in_person'],
      excluded: RECOVERY_METHODS.filter((method) => method !== 'in_person').map((method) => ({
        method,
        reasons: [FAIL_CLOSED],
      })),
    },
    acrValues,
    maxAge: 0,
    reasons: [FAIL_CLOSED],
  };
}
