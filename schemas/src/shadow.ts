import { z } from 'zod';
import { Trigger } from './decision.ts';
import { RiskLevel, Tier } from './vocabulary.ts';

/**
 * `assurance.shadow.v1`, keyed by identityId, JSON: what one candidate (shadow) policy would have
 * required beside a live decision, evaluated on the same state at the same instant. Never a
 * decision: apps must not read it as one. `tiers` says, per tier, how the candidate's requirement
 * moves from the live one (stricter, looser, route_change, same).
 */
export const ShadowTransition = z.object({
  tier: Tier,
  direction: z.enum(['same', 'stricter', 'looser', 'route_change']),
  from: z.string(),
  to: z.string(),
  reasonsAdded: z.array(z.string()),
  reasonsRemoved: z.array(z.string()),
});

export const ShadowRecord = z.object({
  identityId: z.string().min(1).max(200),
  shadow: z.string().min(1).max(40),
  /** The live decision this sits beside. */
  sequence: z.number().int().positive(),
  livePolicyVersion: z.string(),
  shadowPolicyVersion: z.string(),
  shadowPolicyDigest: z.string(),
  computedAt: z.iso.datetime(),
  liveRisk: RiskLevel,
  shadowRisk: RiskLevel,
  /** The candidate's evaluation failed: its tiers are the strictest, and this says so. */
  failed: z.boolean(),
  tiers: z.array(ShadowTransition),
  trigger: Trigger,
});
export type ShadowRecord = z.infer<typeof ShadowRecord>;
