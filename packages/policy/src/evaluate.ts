import {
  type Activation,
  activationsOf,
  activeSignals,
  bindingKey,
  boundLookup,
  channelOf,
  expiryOf,
} from './activations.ts';
import {
  AUTHENTICATORS,
  type Authenticator,
  BINDING_SCOPED,
  type BindingRef,
  type IdentityState,
  type Outcome,
  PHISHING_RESISTANT,
  RECOVERY_METHODS,
  type RecoveryMethod,
  type RiskLevel,
  TIERS,
  type Tier,
  type TierRequirement,
} from './contract.ts';
import { FAIL_CLOSED, strictestRequirement } from './fail-closed.ts';
import type { Policy } from './load.ts';
import { higherRisk, inOrder, sortedUnique, stricterOutcome, tiersFrom } from './order.ts';
import type { EngineReasonCode, ReasonEntry } from './policy-schema.ts';

/** What the policy says for one identity at one instant. */
export interface Evaluation {
  riskLevel: RiskLevel;
  tiers: Record<Tier, TierRequirement>;
  /** When this must be re-evaluated: next signal expiry, hold end, or the staleness bound. */
  validUntil: string;
  /** Every reason behind the result (rule and engine codes with texts), sorted by code. */
  reasons: ReasonEntry[];
}

/** The most bindings a decision names for one excluded authenticator (the contract's bound). */
const MAX_ACCEPTABLE_ON = 32;

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Mutable per-tier accumulator; every operation on it only ever tightens. */
interface TierWork {
  floor: Outcome;
  /** End of each timed or open (`null`) hold placed on this tier. */
  holds: Array<number | null>;
  excluded: Map<Authenticator, Set<string>>;
  /**
   * Per excluded authenticator, the keys of the bindings on which it still counts: those no
   * exclusion of it touched. `null` once any exclusion took the class whole.
   */
  onlyOn: Map<Authenticator, Set<string> | null>;
  recoveryExcluded: Map<RecoveryMethod, Set<string>>;
  phishingResistant: Set<string>;
  liveness: boolean;
  verifiedCallback: boolean;
  reasons: Set<string>;
}

/** Narrows where `a` still counts to `clean` (null: nowhere): several exclusions intersect. */
function narrow(onlyOn: TierWork['onlyOn'], a: Authenticator, clean: ReadonlySet<string> | null): void {
  const held = onlyOn.get(a);
  if (held === undefined) onlyOn.set(a, clean === null ? null : new Set(clean));
  else if (held !== null)
    onlyOn.set(a, clean === null ? null : new Set([...held].filter((k) => clean.has(k))));
}

function addTo<K>(map: Map<K, Set<string>>, key: K, codes: readonly string[]): void {
  const set = map.get(key) ?? new Set<string>();
  for (const code of codes) set.add(code);
  map.set(key, set);
}

class Accumulator {
  readonly tiers = new Map<Tier, TierWork>();
  readonly reasons = new Map<string, ReasonEntry>();
  readonly holdEnds: number[] = [];
  risk: RiskLevel = 'low';
  private readonly policy: Policy;
  private readonly state: IdentityState;
  private readonly nowMs: number;

  constructor(policy: Policy, state: IdentityState, nowMs: number) {
    this.policy = policy;
    this.state = state;
    this.nowMs = nowMs;
    for (const tier of TIERS) {
      this.tiers.set(tier, {
        floor: 'allow',
        holds: [],
        excluded: new Map(),
        onlyOn: new Map(),
        recoveryExcluded: new Map(),
        phishingResistant: new Set(),
        liveness: false,
        verifiedCallback: false,
        reasons: new Set(),
      });
    }
  }

  work(tier: Tier): TierWork {
    const work = this.tiers.get(tier);
    if (!work) throw new Error(`unknown tier ${tier}`);
    return work;
  }

  engineReason(code: EngineReasonCode): string {
    this.reasons.set(code, { code, ...this.policy.engineReasons[code] });
    return code;
  }

  /** Applies one rule firing to every tier it reaches. */
  apply(activation: Activation): void {
    const { rule } = activation;
    const effects = rule.effects;
    const codes = rule.reasons.map((reason) => reason.code);
    for (const reason of rule.reasons) this.reasons.set(reason.code, { ...reason });
    const touch = (from: Tier, change: (work: TierWork) => void) => {
      for (const tier of tiersFrom(from)) {
        const work = this.work(tier);
        change(work);
        for (const code of codes) work.reasons.add(code);
      }
    };

    const bound = boundLookup(activation, this.state);
    const authenticators = new Set([
      ...effects.exclude,
      ...bound.authenticators(effects.excludeBound),
      ...bound.recoverableVia(effects.excludeRecoverableVia),
    ]);
    const recovery = new Set([...effects.excludeRecovery, ...bound.recovery(effects.excludeRecoveryBound)]);
    // Where each excluded class still counts: its bindings this activation did not aim at. A class
    // excluded by name, with nothing to tell bindings apart, or whose secret can be copied between
    // bindings (BINDING_SCOPED) counts nowhere.
    const cleanOf = (a: Authenticator): Set<string> | null => {
      if (bound.wholesale || effects.exclude.includes(a) || !BINDING_SCOPED.includes(a)) return null;
      const hit = new Set([
        ...(effects.excludeBound.includes(a) ? bound.onChannel : []),
        ...(effects.excludeRecoverableVia.includes(a) ? bound.recoverable : []),
      ]);
      return new Set(
        this.state.bindings.filter((b) => b.authenticators.includes(a) && !hit.has(b)).map(bindingKey),
      );
    };
    const clean = new Map([...authenticators].map((a) => [a, cleanOf(a)] as const));
    if (authenticators.size > 0 || recovery.size > 0) {
      touch(effects.excludeFrom, (work) => {
        for (const a of authenticators) {
          addTo(work.excluded, a, codes);
          narrow(work.onlyOn, a, clean.get(a) ?? null);
        }
        for (const m of recovery) addTo(work.recoveryExcluded, m, codes);
      });
    }
    if (effects.requirePhishingResistant) {
      touch(effects.requirePhishingResistant, (work) => {
        for (const code of codes) work.phishingResistant.add(code);
      });
    }
    if (effects.requireLiveness) touch(effects.requireLiveness, (work) => (work.liveness = true));
    if (effects.requireVerifiedCallback)
      touch(effects.requireVerifiedCallback, (work) => (work.verifiedCallback = true));
    if (effects.restrictRecovery) {
      const allowed = new Set<RecoveryMethod>(effects.restrictRecovery);
      touch('low', (work) => {
        for (const m of RECOVERY_METHODS) if (!allowed.has(m)) addTo(work.recoveryExcluded, m, codes);
      });
    }
    if (effects.stepUp)
      touch(effects.stepUp, (work) => (work.floor = stricterOutcome(work.floor, 'step_up')));
    if (effects.hold) {
      let end = activation.end;
      if (effects.holdFor !== undefined) {
        const timed = activation.since + effects.holdFor;
        end = end === null ? timed : Math.min(end, timed);
      }
      if (end === null || end > this.nowMs) {
        if (end !== null) this.holdEnds.push(end);
        touch(effects.hold, (work) => work.holds.push(end));
      }
    }
    if (effects.deny) touch(effects.deny, (work) => (work.floor = stricterOutcome(work.floor, 'deny')));
    if (effects.risk) this.risk = higherRisk(this.risk, effects.risk);
  }

  /** Recovery bound to any channel under an active signal is never a way back in (docs/policy-behaviours.md, principles). */
  taintRecovery(signals: IdentityState['signals']): void {
    if (!this.state.bindingsKnown) return;
    const keys = new Set(signals.map(channelOf).map((c) => (c ? `${c.type}:${c.ref}` : '')));
    const tainted = new Set<RecoveryMethod>();
    for (const b of this.state.bindings) {
      if (keys.has(`${b.channelType}:${b.channelRef}`)) for (const m of b.recovery) tainted.add(m);
    }
    if (tainted.size === 0) return;
    const code = this.engineReason('recovery.channel_under_suspicion');
    for (const tier of TIERS) {
      const work = this.work(tier);
      for (const m of tainted) addTo(work.recoveryExcluded, m, [code]);
      work.reasons.add(code);
    }
  }

  /**
   * The bindings, in a fixed order, on which an excluded class still counts; undefined when none
   * (or more than a decision may list: then the class is simply excluded, the stricter reading).
   */
  acceptableOn(keys: Set<string> | null | undefined): BindingRef[] | undefined {
    if (!keys || keys.size === 0 || keys.size > MAX_ACCEPTABLE_ON) return undefined;
    return this.state.bindings
      .filter((b) => keys.has(bindingKey(b)))
      .map((b) => ({ channelType: b.channelType, channelRef: b.channelRef }))
      .sort((x, y) => compareStrings(bindingKey(x), bindingKey(y)));
  }

  /** Turns a tier's accumulated effects into the contract's `TierRequirement`. */
  finish(tier: Tier): TierRequirement {
    const baseline = this.policy.tiers[tier];
    const work = this.work(tier);
    const requirePhishingResistant = baseline.requirePhishingResistant || work.phishingResistant.size > 0;
    const acceptable = baseline.authenticators.filter(
      (a) => !work.excluded.has(a) && (!requirePhishingResistant || PHISHING_RESISTANT.includes(a)),
    );
    const enrolled = new Set(this.state.bindings.flatMap((b) => b.authenticators));
    const enrolledAcceptable = acceptable.filter((a) => enrolled.has(a));

    // Each exclusion names what excludes it: the rule that excludes it by name or by channel, the
    // baseline, or the phishing resistance the tier now requires (the rules that require it are
    // the tier's reasons), never a rule that merely happens to be active.
    const excludedAuthenticators = AUTHENTICATORS.filter((a) => !acceptable.includes(a)).map(
      (authenticator) => {
        const reasons = new Set(work.excluded.get(authenticator));
        // Baseline codes are the policy's standing texts, not a reason this identity's state gives.
        let implied = true;
        if (!baseline.authenticators.includes(authenticator)) {
          reasons.add('baseline.not_acceptable');
        } else if (requirePhishingResistant && !PHISHING_RESISTANT.includes(authenticator)) {
          reasons.add(this.engineReason('phishing_resistance.required'));
        } else implied = false;
        const on = implied ? undefined : this.acceptableOn(work.onlyOn.get(authenticator));
        return {
          authenticator,
          reasons: reasons.size > 0 ? sortedUnique(reasons) : [FAIL_CLOSED],
          ...(on === undefined ? {} : { acceptableOn: on }),
        };
      },
    );
    const onBindings = excludedAuthenticators.some((x) => x.acceptableOn !== undefined);

    // Outcome: the strictest of baseline and rules; a step-up nobody can complete is a hold.
    const needed = stricterOutcome(baseline.outcome, work.floor);
    let openHold = needed === 'hold';
    if (needed === 'step_up') {
      if (acceptable.length === 0 && !onBindings) {
        work.reasons.add(this.engineReason('hold.no_acceptable_authenticator'));
        openHold = true;
      } else if (this.state.bindingsKnown && enrolledAcceptable.length === 0 && !onBindings) {
        work.reasons.add(this.engineReason('hold.none_enrolled'));
        openHold = true;
      }
    }
    let outcome = needed;
    if (openHold || work.holds.length > 0) outcome = stricterOutcome(outcome, 'hold');
    const timedEnds = work.holds.filter((end): end is number => end !== null);
    const holdUntil =
      outcome === 'hold' && !openHold && timedEnds.length === work.holds.length && timedEnds.length > 0
        ? new Date(Math.max(...timedEnds)).toISOString()
        : undefined;

    const allowed = baseline.recovery.filter((m) => !work.recoveryExcluded.has(m));
    const recoveryExcluded = RECOVERY_METHODS.filter((m) => !allowed.includes(m)).map((method) => {
      const reasons = new Set(work.recoveryExcluded.get(method));
      if (!baseline.recovery.includes(method)) reasons.add('baseline.recovery_not_allowed');
      return { method, reasons: sortedUnique(reasons) };
    });

    const acrValues = requirePhishingResistant
      ? (baseline.acrValuesPhishingResistant ?? baseline.acrValues)
      : baseline.acrValues;
    return {
      outcome,
      acceptableAuthenticators: inOrder(AUTHENTICATORS, acceptable),
      excludedAuthenticators,
      requirePhishingResistant,
      requireLiveness: baseline.requireLiveness || work.liveness,
      requireVerifiedCallback: baseline.requireVerifiedCallback || work.verifiedCallback,
      recovery: { allowed: inOrder(RECOVERY_METHODS, allowed), excluded: recoveryExcluded },
      ...(holdUntil === undefined ? {} : { holdUntil }),
      ...(this.state.bindingsKnown
        ? { enrolledAcceptable: inOrder(AUTHENTICATORS, enrolledAcceptable) }
        : {}),
      acrValues: [...acrValues],
      maxAge: baseline.maxAge,
      reasons: sortedUnique(work.reasons),
    };
  }
}

/**
 * What an identity with no live signal is given, per policy and per shape of such an identity
 * (bindings unknown, or the authenticators it has enrolled): no rule can fire without a signal, so
 * nothing else matters, and most identities are in this state most of the time. Made once by the
 * full evaluation and frozen, since every caller shares it.
 */
const QUIET = new WeakMap<Policy, Map<string, Omit<Evaluation, 'validUntil'>>>();
const QUIET_MAX = 4096;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function quietEvaluation(policy: Policy, state: IdentityState, now: Date): Evaluation {
  const key = state.bindingsKnown
    ? inOrder(
        AUTHENTICATORS,
        state.bindings.flatMap((b) => b.authenticators),
      ).join(',')
    : '?';
  let cache = QUIET.get(policy);
  if (cache === undefined) {
    cache = new Map();
    QUIET.set(policy, cache);
  }
  let hit = cache.get(key);
  if (hit === undefined) {
    const { validUntil: _, ...rest } = evaluateFully(policy, state, now, []);
    hit = deepFreeze(rest);
    if (cache.size < QUIET_MAX) cache.set(key, hit);
  }
  const validUntil = new Date(now.getTime() + policy.evaluation.stalenessMs).toISOString();
  return { ...hit, validUntil };
}

function evaluateUnsafe(policy: Policy, state: IdentityState, now: Date): Evaluation {
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) throw new RangeError('invalid evaluation time');
  const signals = activeSignals(state.signals, nowMs);
  if (signals.length === 0) return quietEvaluation(policy, state, now);
  return evaluateFully(policy, state, now, signals);
}

/** The evaluation with every rule applied: no shortcut (what quietEvaluation caches, and tests compare with). */
export function evaluateFully(
  policy: Policy,
  state: IdentityState,
  now: Date,
  signals: IdentityState['signals'] = activeSignals(state.signals, now.getTime()),
): Evaluation {
  const nowMs = now.getTime();
  const acc = new Accumulator(policy, state, nowMs);
  for (const rule of policy.rules) {
    for (const activation of activationsOf(rule, signals, nowMs)) acc.apply(activation);
  }
  acc.taintRecovery(signals);
  const tiers = Object.fromEntries(TIERS.map((tier) => [tier, acc.finish(tier)])) as Record<
    Tier,
    TierRequirement
  >;

  const horizon = [nowMs + policy.evaluation.stalenessMs, ...acc.holdEnds];
  for (const signal of signals) {
    const expiry = expiryOf(signal);
    if (expiry !== null) horizon.push(expiry);
  }
  const validUntil = new Date(Math.min(...horizon.filter((t) => t > nowMs))).toISOString();
  const reasons = [...acc.reasons.values()].sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  return { riskLevel: acc.risk, tiers, validUntil, reasons };
}

/**
 * The evaluation of `policy` over `state` at `now`: pure and deterministic (input order of signals
 * and bindings does not matter; signals with `expiresAt <= now` are ignored).
 *
 * Never throws: if anything unexpected happens every tier gets {@link strictestRequirement}, and
 * `onFailure` hears of it, so the caller can count and log it: a failure that fails closed must not
 * also fail silently.
 */
export function evaluate(
  policy: Policy,
  state: IdentityState,
  now: Date,
  onFailure?: (err: unknown) => void,
): Evaluation {
  try {
    return evaluateUnsafe(policy, state, now);
  } catch (err) {
    onFailure?.(err);
    return failClosedEvaluation(policy, now);
  }
}

/** Every tier at its strictest; re-evaluate at the staleness bound (or at once if `now` is unusable). */
export function failClosedEvaluation(policy: Policy, now: Date): Evaluation {
  const tiers = Object.fromEntries(TIERS.map((tier) => [tier, strictestRequirement(policy, tier)])) as Record<
    Tier,
    TierRequirement
  >;
  const nowMs = now.getTime();
  const stalenessMs = policy?.evaluation?.stalenessMs ?? 0;
  const validUntil = new Date(Number.isNaN(nowMs) ? 0 : nowMs + stalenessMs).toISOString();
  const text = policy?.engineReasons?.[FAIL_CLOSED] ?? {
    admin: 'Evaluation failed; the strictest requirement applies.',
    user: 'This action is temporarily unavailable.',
  };
  return { riskLevel: 'critical', tiers, validUntil, reasons: [{ code: FAIL_CLOSED, ...text }] };
}
