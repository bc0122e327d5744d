import { OUTCOMES, type Outcome, RISK_LEVELS, type RiskLevel, TIERS, type Tier } from './contract.ts';

/*
 * The three orders the policy relies on. "Stricter" always means a larger index, so combining
 * effects is a max and adding a signal can only move things up.
 */

/** Position of a tier (`low` = 0 … `critical` = 3). */
export function tierIndex(tier: Tier): number {
  return TIERS.indexOf(tier);
}

/** The tiers from `tier` up, e.g. `high` → `[high, critical]`. */
export function tiersFrom(tier: Tier): readonly Tier[] {
  return TIERS.slice(tierIndex(tier));
}

/** Position of an outcome (`allow` < `step_up` < `hold` < `deny`). */
export function outcomeIndex(outcome: Outcome): number {
  return OUTCOMES.indexOf(outcome);
}

/** The stricter of two outcomes. */
export function stricterOutcome(a: Outcome, b: Outcome): Outcome {
  return outcomeIndex(a) >= outcomeIndex(b) ? a : b;
}

/** The higher of two risk levels. */
export function higherRisk(a: RiskLevel, b: RiskLevel): RiskLevel {
  return RISK_LEVELS.indexOf(a) >= RISK_LEVELS.indexOf(b) ? a : b;
}

/** Sorts a subset of a vocabulary into vocabulary order (deterministic output). */
export function inOrder<T extends string>(vocabulary: readonly T[], values: Iterable<T>): T[] {
  const set = new Set(values);
  return vocabulary.filter((value) => set.has(value));
}

/** Sorted, de-duplicated strings. */
export function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}
