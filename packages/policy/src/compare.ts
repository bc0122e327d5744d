import type { TierRequirement } from '@assurance/schemas';
import { TIERS, type Tier } from './contract.ts';
import { outcomeIndex } from './order.ts';

/**
 * How a candidate policy's requirement for a tier differs from the live one's, as a security
 * architect reads a change: `stricter` (asks more of the user, or refuses more), `looser` (asks
 * less: what an attacker with the OTP wants), `route_change` (asks something else: some ways in
 * closed, others opened), or `same`.
 *
 * Each part is compared on its own: the outcome (allow < step_up < hold < deny), the acceptable
 * authenticators and recovery methods (fewer is stricter), the phishing-resistance, liveness and
 * verified-callback demands (demanded is stricter), and the re-authentication age (shorter is
 * stricter). A requirement is stricter when no part is looser and one is stricter, and the other
 * way round; both at once is a route change.
 */
export type Direction = 'same' | 'stricter' | 'looser' | 'route_change';

/** -1 looser, 0 the same, 1 stricter, 2 both (some ways in closed, others opened). */
type Part = -1 | 0 | 1 | 2;

const sets = <T>(live: readonly T[], candidate: readonly T[]): Part => {
  const a = new Set(live);
  const b = new Set(candidate);
  const lost = [...a].some((x) => !b.has(x));
  const gained = [...b].some((x) => !a.has(x));
  // Fewer ways in is stricter; more is looser; some of each is both (reported as a route change).
  if (lost && gained) return 2;
  return lost ? 1 : gained ? -1 : 0;
};
const flag = (live: boolean, candidate: boolean): Part => (live === candidate ? 0 : candidate ? 1 : -1);
const order = (live: number, candidate: number): Part => (live === candidate ? 0 : candidate > live ? 1 : -1);

/** The direction of each compared part, by name (for reports: what made it stricter or looser). */
export function partsOf(live: TierRequirement, candidate: TierRequirement): Record<string, Part> {
  return {
    outcome: order(outcomeIndex(live.outcome), outcomeIndex(candidate.outcome)),
    authenticators: sets(live.acceptableAuthenticators, candidate.acceptableAuthenticators),
    recovery: sets(live.recovery.allowed, candidate.recovery.allowed),
    phishingResistant: flag(live.requirePhishingResistant, candidate.requirePhishingResistant),
    liveness: flag(live.requireLiveness, candidate.requireLiveness),
    verifiedCallback: flag(live.requireVerifiedCallback, candidate.requireVerifiedCallback),
    // A shorter maximum age since the last authentication is stricter.
    maxAge: order(-live.maxAge, -candidate.maxAge),
  };
}

export function compareRequirements(live: TierRequirement, candidate: TierRequirement): Direction {
  const parts = Object.values(partsOf(live, candidate));
  // The outcome decides alone when it moves: a hold is stricter than any step-up, whatever it asks.
  const outcome = order(outcomeIndex(live.outcome), outcomeIndex(candidate.outcome));
  if (outcome !== 0) return outcome === 1 ? 'stricter' : 'looser';
  const stricter = parts.some((p) => p === 1 || p === 2);
  const looser = parts.some((p) => p === -1 || p === 2);
  return stricter && looser ? 'route_change' : stricter ? 'stricter' : looser ? 'looser' : 'same';
}

export interface TierTransition {
  readonly tier: Tier;
  readonly direction: Direction;
  readonly from: string;
  readonly to: string;
  /** Reason codes the candidate gives and the live policy does not, and the other way round. */
  readonly reasonsAdded: readonly string[];
  readonly reasonsRemoved: readonly string[];
}

/** Every tier's transition from the live requirements to the candidate's. */
export function compareTiers(
  live: Readonly<Record<Tier, TierRequirement>>,
  candidate: Readonly<Record<Tier, TierRequirement>>,
): TierTransition[] {
  return TIERS.map((tier) => {
    const a = live[tier];
    const b = candidate[tier];
    return {
      tier,
      direction: compareRequirements(a, b),
      from: a.outcome,
      to: b.outcome,
      reasonsAdded: b.reasons.filter((r) => !a.reasons.includes(r)),
      reasonsRemoved: a.reasons.filter((r) => !b.reasons.includes(r)),
    };
  });
}
