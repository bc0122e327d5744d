import { z } from 'zod';
import { PHISHING_RESISTANT, TIERS } from './contract.ts';
import {
  AuthenticatorSet,
  Duration,
  OutcomeName,
  ReasonCode,
  ReasonText,
  RecoverySet,
  RiskName,
  ScopeName,
  SignalCodeName,
  TierName,
} from './schema-parts.ts';
import { SharedSignalsSchema } from './shared-signals.ts';
import { SignalSettingsSchema } from './signal-settings.ts';

/**
 * The policy document as data. `load.ts` parses YAML into it; the output type is what the evaluator
 * and the engine read, so the types can never drift from the schema (STYLE.md, "Types come from the schemas").
 */

/** Reason codes the evaluator itself emits; a policy must give each of them texts. */
export const ENGINE_REASON_CODES = [
  'baseline.not_acceptable',
  'baseline.recovery_not_allowed',
  'phishing_resistance.required',
  'hold.no_acceptable_authenticator',
  'hold.none_enrolled',
  'recovery.channel_under_suspicion',
  'policy.fail_closed',
] as const;
export type EngineReasonCode = (typeof ENGINE_REASON_CODES)[number];

const AcrValue = z.string().min(1).max(200);

/** Seconds, written as a duration (`15m`); the contract's `maxAge` is in whole seconds. */
const MaxAge = Duration.refine((ms) => ms % 1000 === 0, 'maxAge must be whole seconds').transform(
  (ms) => ms / 1000,
);

const TierBaselineSchema = z.strictObject({
  outcome: OutcomeName,
  authenticators: AuthenticatorSet,
  requirePhishingResistant: z.boolean().default(false),
  requireLiveness: z.boolean().default(false),
  requireVerifiedCallback: z.boolean().default(false),
  recovery: RecoverySet,
  /** RFC 9470 `acr_values` hint for this tier. */
  acrValues: z.array(AcrValue).default([]),
  /** Used instead of `acrValues` whenever the tier requires a phishing-resistant authenticator. */
  acrValuesPhishingResistant: z.array(AcrValue).optional(),
  maxAge: MaxAge,
});

const MatcherSchema = z.strictObject({
  signals: z.array(SignalCodeName).min(1),
  scopes: z.array(ScopeName).min(1).optional(),
  /** Signal attribute → accepted values; every listed attribute must match. */
  attributes: z
    .record(z.string().regex(/^[A-Za-z0-9_]{1,64}$/), z.array(z.string().max(200)).min(1))
    .optional(),
});

const WhenSchema = z
  .strictObject({
    ...MatcherSchema.partial().shape,
    /** Fires once when every matcher matches at least one active signal. */
    allOf: z.array(MatcherSchema).min(2).optional(),
  })
  .superRefine((when, ctx) => {
    const single = when.signals !== undefined || when.scopes !== undefined || when.attributes !== undefined;
    if (when.allOf && single) {
      ctx.addIssue({
        code: 'custom',
        path: ['allOf'],
        message: 'use either allOf or signals/scopes/attributes',
      });
    } else if (!when.allOf && when.signals === undefined) {
      ctx.addIssue({ code: 'custom', path: ['signals'], message: 'signals is required (or use allOf)' });
    }
  })
  .transform((when) =>
    when.allOf
      ? { mode: 'all' as const, matchers: when.allOf }
      : {
          mode: 'each' as const,
          matchers: [
            {
              signals: when.signals ?? [],
              ...(when.scopes ? { scopes: when.scopes } : {}),
              ...(when.attributes ? { attributes: when.attributes } : {}),
            },
          ],
        },
  );

const EffectsSchema = z
  .strictObject({
    /** Authenticators excluded wholesale. */
    exclude: AuthenticatorSet.default([]),
    /** Authenticators excluded when bound to the signal's channel (wholesale if bindings are unknown). */
    excludeBound: AuthenticatorSet.default([]),
    /** Authenticators excluded when bound to a sync account recoverable via the signal's channel. */
    excludeRecoverableVia: AuthenticatorSet.default([]),
    excludeRecovery: RecoverySet.default([]),
    excludeRecoveryBound: RecoverySet.default([]),
    /** Lowest tier the five exclusion lists above apply to. */
    excludeFrom: TierName.default('low'),
    requirePhishingResistant: TierName.optional(),
    requireLiveness: TierName.optional(),
    requireVerifiedCallback: TierName.optional(),
    /** Recovery limited to these methods, in every tier. */
    restrictRecovery: RecoverySet.refine(
      (set) => set.length > 0,
      'must allow at least one method',
    ).optional(),
    /** Tiers from here up that would allow must step up. */
    stepUp: TierName.optional(),
    hold: TierName.optional(),
    /** Hold length from the signal's `since`; without it the hold lasts while the signal does. */
    holdFor: Duration.optional(),
    deny: TierName.optional(),
    risk: RiskName.optional(),
  })
  .superRefine((effects, ctx) => {
    if (effects.holdFor !== undefined && effects.hold === undefined) {
      ctx.addIssue({ code: 'custom', path: ['holdFor'], message: 'holdFor needs hold' });
    }
    const { excludeFrom: _from, holdFor: _for, ...rest } = effects;
    const any = Object.values(rest).some((value) =>
      Array.isArray(value) ? value.length > 0 : value !== undefined,
    );
    if (!any) ctx.addIssue({ code: 'custom', message: 'a rule needs at least one effect' });
  });

const ReasonSchema = z.strictObject({ code: ReasonCode, ...ReasonText.shape });

const RuleSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'rule ids are kebab-case, up to 63 chars'),
  description: z.string().max(1000).optional(),
  when: WhenSchema,
  effects: EffectsSchema,
  reasons: z.array(ReasonSchema).min(1),
});

const EngineReasonsSchema = z.strictObject(
  Object.fromEntries(ENGINE_REASON_CODES.map((code) => [code, ReasonText])) as Record<
    EngineReasonCode,
    typeof ReasonText
  >,
);

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** The whole policy document, with cross-field checks. */
export const PolicyDocumentSchema = z
  .strictObject({
    version: z
      .string({
        error: (issue) => (issue.input === undefined ? 'is required' : 'expected a string such as "1.2.0"'),
      })
      .regex(SEMVER, 'expected semver'),
    description: z.string().max(2000).optional(),
    evaluation: z.strictObject({
      /** Longest a decision stays valid without any signal expiring. */
      staleness: Duration,
    }),
    actions: z.record(
      z.string().regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/, 'action names are dotted snake_case'),
      TierName,
    ),
    tiers: z.strictObject({
      low: TierBaselineSchema,
      medium: TierBaselineSchema,
      high: TierBaselineSchema,
      critical: TierBaselineSchema,
    }),
    signals: SignalSettingsSchema,
    engineReasons: EngineReasonsSchema,
    rules: z.array(RuleSchema).min(1),
    /** Received Security Event Tokens → compromise signals (shared-signals.ts). */
    sharedSignals: SharedSignalsSchema.optional(),
  })
  .superRefine((doc, ctx) => {
    checkTiers(doc.tiers, ctx);
    checkUnique(doc.rules, ctx);
  })
  .transform(({ evaluation, ...doc }) => ({ ...doc, evaluation: { stalenessMs: evaluation.staleness } }));

type Tiers = z.output<typeof TierBaselineSchema>;

/**
 * A higher tier must never be weaker than a lower one: "tiers ≥ X" effects and fail-closed answers
 * that fall back to `critical` rely on the order meaning something.
 */
function checkTiers(tiers: Record<(typeof TIERS)[number], Tiers>, ctx: z.RefinementCtx): void {
  const outcomes = ['allow', 'step_up', 'hold', 'deny'];
  TIERS.forEach((tier, index) => {
    const t = tiers[tier];
    if (t.requirePhishingResistant) {
      // No index in the path: sets come out in vocabulary order, not in the order written.
      t.authenticators.forEach((a) => {
        if (!PHISHING_RESISTANT.includes(a)) {
          ctx.addIssue({
            code: 'custom',
            path: ['tiers', tier, 'authenticators'],
            message: `"${a}" is not phishing-resistant but requirePhishingResistant is true`,
          });
        }
      });
    }
    if (t.outcome === 'step_up' && t.authenticators.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['tiers', tier, 'authenticators'],
        message: 'step_up needs authenticators',
      });
    }
    const lowerName = TIERS[index - 1];
    if (!lowerName) return;
    const lower = tiers[lowerName];
    const weaker = (path: string, message: string) =>
      ctx.addIssue({
        code: 'custom',
        path: ['tiers', tier, path],
        message: `${message}; a higher tier must not be weaker`,
      });
    if (outcomes.indexOf(t.outcome) < outcomes.indexOf(lower.outcome))
      weaker('outcome', `weaker than ${lowerName}`);
    for (const a of t.authenticators) {
      if (!lower.authenticators.includes(a))
        weaker('authenticators', `accepts "${a}" which ${lowerName} does not`);
    }
    for (const m of t.recovery) {
      if (!lower.recovery.includes(m)) weaker('recovery', `allows "${m}" which ${lowerName} does not`);
    }
    for (const flag of ['requirePhishingResistant', 'requireLiveness', 'requireVerifiedCallback'] as const) {
      if (lower[flag] && !t[flag]) weaker(flag, `off while ${lowerName} has it on`);
    }
    if (t.maxAge > lower.maxAge) weaker('maxAge', `longer than ${lowerName}'s`);
  });
}

function checkUnique(
  rules: Array<{ id: string; reasons: Array<{ code: string }> }>,
  ctx: z.RefinementCtx,
): void {
  const ids = new Set<string>();
  const codes = new Set<string>(ENGINE_REASON_CODES);
  rules.forEach((rule, index) => {
    if (ids.has(rule.id)) {
      ctx.addIssue({
        code: 'custom',
        path: ['rules', index, 'id'],
        message: `duplicate rule id "${rule.id}"`,
      });
    }
    ids.add(rule.id);
    rule.reasons.forEach((reason, r) => {
      if (codes.has(reason.code)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', index, 'reasons', r, 'code'],
          message: `reason code "${reason.code}" is already used`,
        });
      }
      codes.add(reason.code);
    });
  });
}

/** Read-only all the way down: loaded policies are frozen. */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** A validated, normalized policy document (durations in ms, sets in vocabulary order). */
export type PolicyDocument = z.output<typeof PolicyDocumentSchema>;
/** One rule of a loaded policy. */
export type PolicyRule = DeepReadonly<PolicyDocument['rules'][number]>;
/** A rule's effects. */
export type RuleEffects = PolicyRule['effects'];
/** One signal matcher of a rule's `when`. */
export type SignalMatcher = PolicyRule['when']['matchers'][number];
/** A tier's baseline requirement. */
export type TierBaseline = DeepReadonly<PolicyDocument['tiers']['low']>;
/** A reason code with its texts. */
export type ReasonEntry = { code: string; admin: string; user: string };
