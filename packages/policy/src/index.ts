/**
 * `@assurance/policy`: the declarative, versioned assurance policy and its pure evaluator.
 *
 * Load a policy once (`loadPolicyFile()`), then `evaluate(policy, state, now)` per identity, and
 * `verifyCompletion(requirement, completed, now)` when an app asks whether a step-up was enough.
 */
import type { Tier, TierRequirement } from './contract.ts';
import type { Evaluation } from './evaluate.ts';
import type { Policy } from './load.ts';

export { rulesFiredBy } from './activations.ts';
export { canonicalJson, digestOf } from './canonical.ts';
export { type CaseFile, loadCaseFile, type PolicyCase, refFor, stateFor } from './case-file.ts';
export { type CaseResult, runCase, runCases } from './case-runner.ts';
export {
  type CompactTier,
  type CompactTiers,
  compactTiers,
  enrolledOf,
  expandDecision,
  expandDecisionLazily,
  expandTier,
  expandTiers,
  PolicyMismatchError,
} from './compact.ts';
export {
  compareRequirements,
  compareTiers,
  type Direction,
  partsOf,
  type TierTransition,
} from './compare.ts';
export { formatDuration, parseDuration } from './durations.ts';
export { type Evaluation, evaluate, failClosedEvaluation } from './evaluate.ts';
export { FAIL_CLOSED, strictestRequirement } from './fail-closed.ts';
export {
  defaultPolicyPath,
  formatIssue,
  loadPolicy,
  loadPolicyFile,
  loadShadowPolicies,
  type Policy,
  PolicyError,
  type PolicyIssue,
  UnknownActionError,
} from './load.ts';
export { higherRisk, outcomeIndex, stricterOutcome, tierIndex, tiersFrom } from './order.ts';
export {
  ENGINE_REASON_CODES,
  type EngineReasonCode,
  type PolicyDocument,
  PolicyDocumentSchema,
  type PolicyRule,
  type ReasonEntry,
  type RuleEffects,
  type SignalMatcher,
  type TierBaseline,
} from './policy-schema.ts';
export { MappingRuleSchema, SharedSignalsSchema, type SharedSignalsSettings } from './shared-signals.ts';
export {
  MAILBOX_CHANGE_MODES,
  type MailboxChangeMode,
  type SignalSettings,
  SignalSettingsSchema,
} from './signal-settings.ts';
export {
  type Completion,
  MISSING_CODES,
  type MissingCode,
  type Verification,
  verifyCompletion,
} from './verify.ts';

/**
 * The requirement for one action: its tier's requirement.
 * @throws UnknownActionError for an action the policy does not name.
 */
export function requirementFor(policy: Policy, evaluation: Evaluation, action: string): TierRequirement {
  const tier: Tier = policy.tierFor(action);
  return evaluation.tiers[tier];
}
