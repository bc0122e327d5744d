import { isDeepStrictEqual } from 'node:util';
import type { BindingRef, CompactTier, CompactTiers, Decision, DecisionV2 } from '@assurance/schemas';
import {
  AUTHENTICATORS,
  type Authenticator,
  PHISHING_RESISTANT,
  RECOVERY_METHODS,
  type RecoveryMethod,
  TIERS,
  type Tier,
  type TierRequirement,
} from './contract.ts';
import type { Policy } from './load.ts';
import { sortedUnique } from './order.ts';

/**
 * Tiers written relative to the policy (decision format 2, docs/contract.md#decision-v2), and back.
 *
 * Most of a tier is the policy's own requirement for it: the authenticators and recovery methods it
 * accepts, its flags, acr values and max age. A compact decision keeps per tier only its outcome,
 * reasons, hold and the flags that differ from the policy's, and once for the whole decision the
 * identity's own exclusions, each from the lowest tier it reaches upwards (rule effects reach "this
 * tier and above"). What the policy's tier excludes by itself (an authenticator it does not accept,
 * one that required phishing resistance rules out, a recovery method it does not allow) is implied,
 * with its standing reason.
 *
 * `compactTiers` proves every tier it writes by expanding it again, and writes a tier whole
 * (`requirement`) when the expansion differs in any way, so a compact decision never says less than
 * the evaluation did, whatever the policy or the evaluator become.
 */

export type { CompactTier, CompactTiers };

type Exclusion<K extends string, V> = {
  readonly from: Tier;
  readonly reasons: readonly string[];
} & Record<K, V>;

type AuthenticatorEntry = NonNullable<CompactTiers['exclusions']>[number];

const refKey = (b: BindingRef) => `${b.channelType}:${b.channelRef}`;

/**
 * Where an authenticator the decision's own entries exclude at `tier` still counts: the bindings
 * every entry reaching the tier lists (undefined as soon as one lists none, or none are left).
 */
function acceptableOnAt(
  exclusions: readonly AuthenticatorEntry[] | undefined,
  a: Authenticator,
  tier: Tier,
): BindingRef[] | undefined {
  const rank = TIERS.indexOf(tier);
  let kept: BindingRef[] | undefined;
  for (const x of exclusions ?? []) {
    if (x.authenticator !== a || TIERS.indexOf(x.from) > rank) continue;
    if (x.acceptableOn === undefined) return undefined;
    const listed = new Set(x.acceptableOn.map(refKey));
    kept = (kept ?? x.acceptableOn).filter((b) => listed.has(refKey(b)));
  }
  return kept && kept.length > 0 ? kept.map((b) => ({ ...b })) : undefined;
}

/** The standing reason a tier excludes `a` for by itself, or undefined when it accepts it. */
function impliedAuthenticator(policy: Policy, tier: Tier, pr: boolean, a: Authenticator): string | undefined {
  if (!policy.tiers[tier].authenticators.includes(a)) return 'baseline.not_acceptable';
  if (pr && !PHISHING_RESISTANT.includes(a)) return 'phishing_resistance.required';
  return undefined;
}

function impliedRecovery(policy: Policy, tier: Tier, m: RecoveryMethod): string | undefined {
  return policy.tiers[tier].recovery.includes(m) ? undefined : 'baseline.recovery_not_allowed';
}

/** The reasons `key` is excluded for at `tier` by the decision's own exclusions. */
function ownReasons<K extends string, V>(
  exclusions: ReadonlyArray<Exclusion<K, V>> | undefined,
  field: K,
  key: V,
  tier: Tier,
): string[] {
  const rank = TIERS.indexOf(tier);
  const out: string[] = [];
  for (const x of exclusions ?? []) {
    if (x[field] === key && TIERS.indexOf(x.from) <= rank) out.push(...x.reasons);
  }
  return out;
}

/** The requirement a compact tier stands for, under `policy`. */
export function expandTier(
  policy: Policy,
  tier: Tier,
  c: CompactTiers,
  enrolled: readonly Authenticator[] | null,
): TierRequirement {
  const t = c.tiers[tier];
  if (t.requirement) return t.requirement;
  const baseline = policy.tiers[tier];
  const pr = t.requirePhishingResistant ?? baseline.requirePhishingResistant;
  const acceptable: Authenticator[] = [];
  const excludedAuthenticators: TierRequirement['excludedAuthenticators'] = [];
  for (const a of AUTHENTICATORS) {
    const own = ownReasons(c.exclusions, 'authenticator', a, tier);
    const implied = impliedAuthenticator(policy, tier, pr, a);
    if (own.length === 0 && implied === undefined) acceptable.push(a);
    else {
      const on = implied === undefined ? acceptableOnAt(c.exclusions, a, tier) : undefined;
      excludedAuthenticators.push({
        authenticator: a,
        reasons: sortedUnique(implied ? [...own, implied] : own),
        ...(on === undefined ? {} : { acceptableOn: on }),
      });
    }
  }
  const allowed: RecoveryMethod[] = [];
  const recoveryExcluded: TierRequirement['recovery']['excluded'] = [];
  for (const m of RECOVERY_METHODS) {
    const own = ownReasons(c.recoveryExclusions, 'method', m, tier);
    const implied = impliedRecovery(policy, tier, m);
    if (own.length === 0 && implied === undefined) allowed.push(m);
    else recoveryExcluded.push({ method: m, reasons: sortedUnique(implied ? [...own, implied] : own) });
  }
  const acrValues = pr ? (baseline.acrValuesPhishingResistant ?? baseline.acrValues) : baseline.acrValues;
  return {
    outcome: t.outcome,
    acceptableAuthenticators: acceptable,
    excludedAuthenticators,
    requirePhishingResistant: pr,
    requireLiveness: t.requireLiveness ?? baseline.requireLiveness,
    requireVerifiedCallback: t.requireVerifiedCallback ?? baseline.requireVerifiedCallback,
    recovery: { allowed, excluded: recoveryExcluded },
    ...(t.holdUntil === undefined ? {} : { holdUntil: t.holdUntil }),
    ...(enrolled === null ? {} : { enrolledAcceptable: acceptable.filter((a) => enrolled.includes(a)) }),
    acrValues: [...acrValues],
    maxAge: baseline.maxAge,
    reasons: [...t.reasons],
  };
}

/**
 * Per key, its own reasons at each tier (the tier's reasons less the standing one), as entries from
 * the lowest tier each reason reaches. Keys whose reasons do not grow with the tier are left out:
 * the tiers they concern fail the expansion check and are written whole.
 */
function hoist<K extends string, V extends string>(
  field: K,
  keys: readonly V[],
  ownAt: (tier: Tier, key: V) => string[] | undefined,
): Array<Exclusion<K, V>> {
  const out: Array<Exclusion<K, V>> = [];
  for (const key of keys) {
    let held = new Set<string>();
    const entries: Array<Exclusion<K, V>> = [];
    let monotone = true;
    for (const tier of TIERS) {
      const own = new Set(ownAt(tier, key) ?? []);
      if ([...held].some((r) => !own.has(r))) {
        monotone = false;
        break;
      }
      const added = sortedUnique([...own].filter((r) => !held.has(r)));
      if (added.length > 0) entries.push({ [field]: key, from: tier, reasons: added } as Exclusion<K, V>);
      held = own;
    }
    if (monotone) out.push(...entries);
  }
  return out;
}

/**
 * Adds to the hoisted entries the bindings on which each authenticator still counts. Tier by tier
 * upwards, where the entries so far would expand to other bindings than the evaluation gave, an
 * entry from that tier narrows them (the evaluation only ever narrows them upwards, as exclusions
 * accumulate). Tiers where the policy itself excludes the authenticator carry no such bindings.
 */
function withAcceptableOn(
  hoisted: AuthenticatorEntry[],
  exclusionAt: (
    tier: Tier,
    a: Authenticator,
  ) => TierRequirement['excludedAuthenticators'][number] | undefined,
): AuthenticatorEntry[] {
  const out: AuthenticatorEntry[] = [];
  for (const a of AUTHENTICATORS) {
    const mine = hoisted.filter((x) => x.authenticator === a);
    const entries: AuthenticatorEntry[] = [];
    // Entries that begin on a tier where the policy excludes `a` itself take their bindings from the
    // first tier above where it does not.
    let pending: AuthenticatorEntry[] = [];
    for (const tier of TIERS) {
      const x = exclusionAt(tier, a);
      const want = x?.acceptableOn;
      for (const entry of mine.filter((e) => e.from === tier)) {
        const copy = { ...entry };
        entries.push(copy);
        pending.push(copy);
      }
      if (x === undefined || entries.length === 0) continue;
      if (want) for (const entry of pending) entry.acceptableOn = want;
      pending = [];
      if (!isDeepStrictEqual(acceptableOnAt(entries, a, tier), want)) {
        const reasons = [...(entries[0] as AuthenticatorEntry).reasons];
        entries.push({ authenticator: a, from: tier, reasons, ...(want ? { acceptableOn: want } : {}) });
      }
    }
    out.push(...entries);
  }
  return out;
}

/**
 * Every tier written relative to `policy`, each checked by expanding it again. `enrolled`: the
 * authenticators of the identity's bindings, null when its bindings are unknown.
 */
export function compactTiers(
  policy: Policy,
  tiers: Readonly<Record<Tier, TierRequirement>>,
  enrolled: readonly Authenticator[] | null,
): CompactTiers {
  const exclusionAt = (tier: Tier, a: Authenticator) =>
    tiers[tier].excludedAuthenticators.find((e) => e.authenticator === a);
  const impliedAt = (tier: Tier, a: Authenticator) =>
    impliedAuthenticator(policy, tier, tiers[tier].requirePhishingResistant, a);
  const exclusions = withAcceptableOn(
    hoist('authenticator', AUTHENTICATORS, (tier, a) => {
      const implied = impliedAt(tier, a);
      return exclusionAt(tier, a)?.reasons.filter((r) => r !== implied);
    }).map((x) => ({ authenticator: x.authenticator, from: x.from, reasons: [...x.reasons] })),
    (tier, a) => (impliedAt(tier, a) === undefined ? exclusionAt(tier, a) : undefined),
  );
  const recoveryExclusions = hoist('method', RECOVERY_METHODS, (tier, m) => {
    const x = tiers[tier].recovery.excluded.find((e) => e.method === m);
    const implied = impliedRecovery(policy, tier, m);
    return x?.reasons.filter((r) => r !== implied);
  });
  const compact = {} as Record<Tier, CompactTier>;
  for (const tier of TIERS) {
    const r = tiers[tier];
    const b = policy.tiers[tier];
    compact[tier] = {
      outcome: r.outcome,
      reasons: [...r.reasons],
      ...(r.requirePhishingResistant === b.requirePhishingResistant
        ? {}
        : { requirePhishingResistant: r.requirePhishingResistant }),
      ...(r.requireLiveness === b.requireLiveness ? {} : { requireLiveness: r.requireLiveness }),
      ...(r.requireVerifiedCallback === b.requireVerifiedCallback
        ? {}
        : { requireVerifiedCallback: r.requireVerifiedCallback }),
      ...(r.holdUntil === undefined ? {} : { holdUntil: r.holdUntil }),
    };
  }
  const out: CompactTiers = {
    tiers: compact,
    ...(exclusions.length === 0 ? {} : { exclusions: exclusions as NonNullable<CompactTiers['exclusions']> }),
    ...(recoveryExclusions.length === 0
      ? {}
      : { recoveryExclusions: recoveryExclusions as NonNullable<CompactTiers['recoveryExclusions']> }),
  };
  for (const tier of TIERS) {
    if (!isDeepStrictEqual(expandTier(policy, tier, out, enrolled), tiers[tier])) {
      const r = tiers[tier];
      compact[tier] = { outcome: r.outcome, reasons: [...r.reasons], requirement: r };
    }
  }
  return out;
}

/** Every tier of a compact decision expanded under `policy`. */
export function expandTiers(
  policy: Policy,
  c: CompactTiers,
  enrolled: readonly Authenticator[] | null,
): Record<Tier, TierRequirement> {
  const out = {} as Record<Tier, TierRequirement>;
  for (const tier of TIERS) out[tier] = expandTier(policy, tier, c, enrolled);
  return out;
}

/** The authenticators a compact decision carries as enrolled (vocabulary order), or null without bindings. */
export function enrolledOf(
  bindingsKnown: boolean,
  bindings: ReadonlyArray<{ readonly authenticators: readonly Authenticator[] }>,
): Authenticator[] | null {
  if (!bindingsKnown) return null;
  const set = new Set(bindings.flatMap((b) => b.authenticators));
  return AUTHENTICATORS.filter((a) => set.has(a));
}

/** A format 2 decision made under a policy other than the one given: it cannot be expanded. */
export class PolicyMismatchError extends Error {
  override readonly name = 'PolicyMismatchError';
}

/** A format 2 decision's parts, once its policy is checked to be `policy`. */
function partsOf(policy: Policy, d: DecisionV2) {
  if (d.policyDigest !== policy.digest) {
    throw new PolicyMismatchError(`decided under policy ${d.policyDigest}, not ${policy.digest}`);
  }
  const { format: _format, enrolled, tiers, exclusions, recoveryExclusions, ...envelope } = d;
  const compact: CompactTiers = {
    tiers,
    ...(exclusions === undefined ? {} : { exclusions }),
    ...(recoveryExclusions === undefined ? {} : { recoveryExclusions }),
  };
  return { envelope, compact, enrolled: enrolled ?? null };
}

/**
 * A decision as the v1 contract spells it, whichever format it was published in: a format 2
 * decision is expanded with `policy`, which must be the one it names (PolicyMismatchError if not).
 */
export function expandDecision(policy: Policy, d: Decision | DecisionV2): Decision {
  if (!('format' in d)) return d;
  const { envelope, compact, enrolled } = partsOf(policy, d);
  return { ...envelope, tiers: expandTiers(policy, compact, enrolled) };
}

/**
 * expandDecision, with each tier expanded only when it is read (and then kept): a lookup for one
 * action needs one tier of four. The result reads as a plain v1 decision, JSON included.
 */
export function expandDecisionLazily(policy: Policy, d: Decision | DecisionV2): Decision {
  if (!('format' in d)) return d;
  const { envelope, compact, enrolled } = partsOf(policy, d);
  const expanded = {} as Record<Tier, TierRequirement>;
  for (const tier of TIERS) {
    let kept: TierRequirement | undefined;
    Object.defineProperty(expanded, tier, {
      enumerable: true,
      get: () => {
        kept ??= expandTier(policy, tier, compact, enrolled);
        return kept;
      },
    });
  }
  return { ...envelope, tiers: expanded };
}
