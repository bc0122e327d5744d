import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import {
  type ActiveSignal,
  type Binding,
  CHANNEL_TYPES,
  type IdentityState,
  SIGNAL_SCOPES,
  TIERS,
} from './contract.ts';
import { parseDuration } from './durations.ts';
import { defaultPolicyPath, PolicyError, parseYamlWith } from './load.ts';
import {
  AuthenticatorName,
  AuthenticatorSet,
  OutcomeName,
  ReasonCode,
  RecoveryName,
  RecoverySet,
  RiskName,
  SignalCodeName,
} from './schema-parts.ts';

/**
 * Table-driven policy cases in concise YAML. Channels are written `phone:main`, `email:work`,
 * `device:laptop`, `sync_account:icloud` and hashed into channel refs here, so cases read like
 * the story they tell. Times are ISO or relative to the file's `now` (`-2d`, `+12d`, `now`).
 */

const ChannelName = z.string().regex(/^[a-z_]+:[\w.@+-]+$/, 'expected <channelType>:<name>, e.g. phone:main');
const Moment = z
  .string()
  .regex(/^(now|[+-]\d+(ms|s|m|h|d|w)|\d{4}-\d\d-\d\dT.+)$/, 'expected now, -2d, +12d or ISO');

const CaseBinding = z.strictObject({
  channel: ChannelName,
  authenticators: z.array(AuthenticatorName).default([]),
  recovery: z.array(RecoveryName).default([]),
  recoverableVia: z.array(ChannelName).default([]),
  boundAt: Moment.default('-30d'),
});

const CaseSignal = z.strictObject({
  code: SignalCodeName,
  /** `identity`, or `<scope>:<name>` (a channel, `credential:…` or `token:…`). */
  on: z.string().min(1),
  since: Moment.default('-1h'),
  /** `never` means until cleared. */
  expires: z.union([Moment, z.literal('never')]).default('never'),
  attributes: z.record(z.string(), z.string()).default({}),
});

const TierExpectation = z.union([
  OutcomeName,
  z.strictObject({
    outcome: OutcomeName.optional(),
    acceptable: AuthenticatorSet.optional(),
    allows: AuthenticatorSet.optional(),
    excludes: AuthenticatorSet.optional(),
    recovery: RecoverySet.optional(),
    recoveryExcludes: RecoverySet.optional(),
    requirePhishingResistant: z.boolean().optional(),
    requireLiveness: z.boolean().optional(),
    requireVerifiedCallback: z.boolean().optional(),
    /** Exact `enrolledAcceptable`; `null` asserts it is absent (bindings unknown). */
    enrolled: AuthenticatorSet.nullable().optional(),
    /** Exact `holdUntil`; `none` asserts it is absent. */
    holdUntil: z.union([Moment, z.literal('none')]).optional(),
    reasons: z.array(ReasonCode).optional(),
    /** Exactly the reasons of each named exclusion, e.g. `{ totp: [phishing_resistance.required] }`. */
    excludedBecause: z.partialRecord(AuthenticatorName, z.array(ReasonCode)).optional(),
    /** Exactly the reasons of each named recovery exclusion. */
    recoveryExcludedBecause: z.partialRecord(RecoveryName, z.array(ReasonCode)).optional(),
  }),
]);

const Case = z.strictObject({
  name: z.string().min(1),
  /** Omit for "bindings unknown"; `[]` means known and empty. */
  bindings: z.array(CaseBinding).optional(),
  signals: z.array(CaseSignal).default([]),
  expect: z.strictObject({
    risk: RiskName.optional(),
    validUntil: Moment.optional(),
    /** Reason codes that must appear in the evaluation. */
    reasons: z.array(ReasonCode).optional(),
    tiers: z.partialRecord(
      z.enum(TIERS, { error: (i) => `unknown tier ${JSON.stringify(i.input)}` }),
      TierExpectation,
    ),
  }),
});

export const CaseFileSchema = z.strictObject({
  /** Policy to test, relative to the case file; the default policy when absent. */
  policy: z.string().optional(),
  now: z.iso.datetime({ offset: true }),
  cases: z.array(Case).min(1),
});

/** A parsed case file. */
export type CaseFile = z.output<typeof CaseFileSchema>;
/** One case of a {@link CaseFile}. */
export type PolicyCase = CaseFile['cases'][number];
/** A tier expectation in its long form. */
export type TierExpectationSpec = Exclude<z.output<typeof TierExpectation>, string>;

/** The channel ref a case name such as `phone:main` stands for (32 hex chars, like the engine's HMAC). */
export function refFor(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 32);
}

/** Resolves `now`, `-2d`, `+12d` or an ISO time against `now`. */
export function resolveMoment(moment: string, now: Date): string {
  if (moment === 'now') return now.toISOString();
  const sign = moment[0];
  if (sign === '+' || sign === '-') {
    const ms = parseDuration(moment.slice(1)) ?? 0;
    return new Date(now.getTime() + (sign === '+' ? ms : -ms)).toISOString();
  }
  return new Date(moment).toISOString();
}

function channelParts(name: string) {
  const type = name.slice(0, name.indexOf(':'));
  const channelType = CHANNEL_TYPES.find((candidate) => candidate === type);
  if (!channelType) throw new Error(`"${name}": unknown channel type "${type}"`);
  return { channelType, channelRef: refFor(name) };
}

/** Builds the `IdentityState` a case describes. */
export function stateFor(spec: PolicyCase, now: Date): IdentityState {
  const bindings: Binding[] = (spec.bindings ?? []).map((b) => ({
    ...channelParts(b.channel),
    authenticators: b.authenticators,
    recovery: b.recovery,
    boundAt: resolveMoment(b.boundAt, now),
    recoverableVia: b.recoverableVia.map(channelParts),
  }));
  const signals: ActiveSignal[] = spec.signals.map((s, index) => {
    const scopeName = s.on.includes(':') ? s.on.slice(0, s.on.indexOf(':')) : s.on;
    const scope = SIGNAL_SCOPES.find((candidate) => candidate === scopeName);
    if (!scope) throw new Error(`signals[${index}].on: unknown scope "${scopeName}"`);
    return {
      code: s.code,
      scope,
      ref: s.on.includes(':') ? refFor(s.on) : null,
      since: resolveMoment(s.since, now),
      expiresAt: s.expires === 'never' ? null : resolveMoment(s.expires, now),
      sourceEventIds: [`case-${index}`],
      attributes: s.attributes,
    };
  });
  return {
    identityId: 'case',
    tenantId: null,
    bindingsKnown: spec.bindings !== undefined,
    bindings,
    signals,
  };
}

/** A case file with the policy path it names resolved. */
export interface LoadedCaseFile {
  file: CaseFile;
  path: string;
  policyPath: string;
}

/**
 * Reads and validates a case file.
 * @throws PolicyError on unreadable or invalid files.
 */
export function loadCaseFile(path: string): LoadedCaseFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new PolicyError(path, [{ path: '', message: `cannot read file: ${(error as Error).message}` }]);
  }
  const file = parseYamlWith(CaseFileSchema, text, path);
  const policyPath = file.policy ? resolve(dirname(path), file.policy) : defaultPolicyPath;
  return { file, path, policyPath };
}
