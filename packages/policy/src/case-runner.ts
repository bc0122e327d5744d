import { type PolicyCase, resolveMoment, stateFor, type TierExpectationSpec } from './case-file.ts';
import { TIERS, type TierRequirement } from './contract.ts';
import { type Evaluation, evaluate } from './evaluate.ts';
import type { Policy } from './load.ts';

/** The result of one case: no failures means it passed. */
export interface CaseResult {
  name: string;
  failures: string[];
  evaluation?: Evaluation;
}

const list = (items: readonly string[]) => `[${items.join(', ')}]`;

function compareSet(
  failures: string[],
  where: string,
  expected: readonly string[],
  actual: readonly string[],
) {
  const missing = expected.filter((item) => !actual.includes(item));
  const unexpected = actual.filter((item) => !expected.includes(item));
  if (missing.length === 0 && unexpected.length === 0) return;
  const detail = [
    missing.length ? `missing ${list(missing)}` : '',
    unexpected.length ? `unexpected ${list(unexpected)}` : '',
  ].filter(Boolean);
  failures.push(`${where}: expected ${list(expected)}, got ${list(actual)} (${detail.join('; ')})`);
}

function compareSubset(
  failures: string[],
  where: string,
  expected: readonly string[],
  actual: readonly string[],
) {
  const missing = expected.filter((item) => !actual.includes(item));
  if (missing.length) failures.push(`${where}: expected to include ${list(missing)}, got ${list(actual)}`);
}

function compareValue(failures: string[], where: string, expected: unknown, actual: unknown) {
  if (expected !== actual) failures.push(`${where}: expected ${String(expected)}, got ${String(actual)}`);
}

function checkTier(
  failures: string[],
  where: string,
  spec: TierExpectationSpec,
  tier: TierRequirement,
  now: Date,
) {
  if (spec.outcome !== undefined) compareValue(failures, `${where}.outcome`, spec.outcome, tier.outcome);
  if (spec.acceptable)
    compareSet(failures, `${where}.acceptable`, spec.acceptable, tier.acceptableAuthenticators);
  if (spec.allows) compareSubset(failures, `${where}.allows`, spec.allows, tier.acceptableAuthenticators);
  const excluded = tier.excludedAuthenticators.map((e) => e.authenticator);
  if (spec.excludes) compareSubset(failures, `${where}.excludes`, spec.excludes, excluded);
  if (spec.recovery) compareSet(failures, `${where}.recovery`, spec.recovery, tier.recovery.allowed);
  const recoveryExcluded = tier.recovery.excluded.map((e) => e.method);
  if (spec.recoveryExcludes)
    compareSubset(failures, `${where}.recoveryExcludes`, spec.recoveryExcludes, recoveryExcluded);
  for (const flag of ['requirePhishingResistant', 'requireLiveness', 'requireVerifiedCallback'] as const) {
    if (spec[flag] !== undefined) compareValue(failures, `${where}.${flag}`, spec[flag], tier[flag]);
  }
  if (spec.enrolled === null && tier.enrolledAcceptable !== undefined) {
    failures.push(`${where}.enrolled: expected absent, got ${list(tier.enrolledAcceptable)}`);
  } else if (spec.enrolled) {
    if (tier.enrolledAcceptable === undefined)
      failures.push(`${where}.enrolled: expected ${list(spec.enrolled)}, got absent`);
    else compareSet(failures, `${where}.enrolled`, spec.enrolled, tier.enrolledAcceptable);
  }
  if (spec.holdUntil !== undefined) {
    const expected = spec.holdUntil === 'none' ? undefined : resolveMoment(spec.holdUntil, now);
    compareValue(failures, `${where}.holdUntil`, expected ?? 'absent', tier.holdUntil ?? 'absent');
  }
  if (spec.reasons) compareSubset(failures, `${where}.reasons`, spec.reasons, tier.reasons);
  // What excludes a method matters as much as that it is excluded: users and support read it.
  for (const [authenticator, reasons] of Object.entries(spec.excludedBecause ?? {})) {
    const excludedOne = tier.excludedAuthenticators.find((e) => e.authenticator === authenticator);
    if (!excludedOne) failures.push(`${where}.excludedBecause.${authenticator}: not excluded`);
    else
      compareSet(failures, `${where}.excludedBecause.${authenticator}`, reasons ?? [], excludedOne.reasons);
  }
  for (const [method, reasons] of Object.entries(spec.recoveryExcludedBecause ?? {})) {
    const excludedOne = tier.recovery.excluded.find((e) => e.method === method);
    if (!excludedOne) failures.push(`${where}.recoveryExcludedBecause.${method}: not excluded`);
    else
      compareSet(failures, `${where}.recoveryExcludedBecause.${method}`, reasons ?? [], excludedOne.reasons);
  }
}

/** Evaluates one case against `policy` and lists every difference from what it expects. */
export function runCase(policy: Policy, spec: PolicyCase, now: Date): CaseResult {
  const failures: string[] = [];
  let evaluation: Evaluation;
  try {
    evaluation = evaluate(policy, stateFor(spec, now), now);
  } catch (error) {
    return { name: spec.name, failures: [`cannot build case: ${(error as Error).message}`] };
  }
  const expect = spec.expect;
  if (expect.risk) compareValue(failures, 'riskLevel', expect.risk, evaluation.riskLevel);
  if (expect.validUntil) {
    compareValue(failures, 'validUntil', resolveMoment(expect.validUntil, now), evaluation.validUntil);
  }
  if (expect.reasons) {
    compareSubset(
      failures,
      'reasons',
      expect.reasons,
      evaluation.reasons.map((r) => r.code),
    );
  }
  for (const tier of TIERS) {
    const tierSpec = expect.tiers[tier];
    if (tierSpec === undefined) continue;
    const spec = typeof tierSpec === 'string' ? { outcome: tierSpec } : tierSpec;
    checkTier(failures, `tiers.${tier}`, spec, evaluation.tiers[tier], now);
  }
  return { name: spec.name, failures, evaluation };
}

/** Runs every case of a file. */
export function runCases(policy: Policy, cases: readonly PolicyCase[], now: Date): CaseResult[] {
  return cases.map((spec) => runCase(policy, spec, now));
}
