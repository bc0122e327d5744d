import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDocument } from 'yaml';
import { compactTiers, enrolledOf, expandDecisionLazily, expandTiers } from './compact.ts';
import {
  type ActiveSignal,
  AUTHENTICATORS,
  type Authenticator,
  BINDING_SCOPED,
  type Binding,
  type IdentityState,
  RECOVERY_METHODS,
  RISK_LEVELS,
  SIGNAL_CODES,
  TIERS,
  type TierRequirement,
} from './contract.ts';
import { evaluate, evaluateFully } from './evaluate.ts';
import { defaultPolicyPath, loadPolicy, type Policy } from './load.ts';
import { outcomeIndex } from './order.ts';
import { at, bind, defaultPolicy, NOW, signal } from './test-support.ts';

/*
 * Property tests over random identities: determinism (same tier and state → same requirement,
 * whatever the input order) and monotonicity (adding any signal never relaxes any tier).
 * Run against the default policy and a stress policy that adds timed holds, allOf holds and
 * attribute matchers, which the default does not exercise.
 */

const CHANNELS = ['phone:a', 'phone:b', 'email:a', 'email:b', 'device:a', 'device:b', 'sync_account:a'];
const RECOVERY_CHANNELS = ['phone:a', 'phone:b', 'email:a', 'email:b'];
const SUBJECTS = [...CHANNELS, 'identity', 'credential:x', 'token:y'];

const bindingArb = fc
  .record({
    channel: fc.constantFrom(...CHANNELS),
    authenticators: fc.subarray([...AUTHENTICATORS]),
    recovery: fc.subarray([...RECOVERY_METHODS]),
    via: fc.subarray(RECOVERY_CHANNELS, { maxLength: 2 }),
  })
  .map(({ channel, authenticators, recovery, via }) =>
    bind(channel, authenticators, recovery, channel.startsWith('sync_account') ? via : []),
  );

const signalArb: fc.Arbitrary<ActiveSignal> = fc
  .record({
    code: fc.constantFrom(...SIGNAL_CODES),
    on: fc.constantFrom(...SUBJECTS),
    sinceHours: fc.integer({ min: -400, max: 1 }),
    expiresHours: fc.option(fc.integer({ min: -5, max: 400 }), { nil: null }),
    changeType: fc.constantFrom(undefined, 'sim_change', 'port_out'),
  })
  .map(({ code, on, sinceHours, expiresHours, changeType }) =>
    signal(code, on, {
      since: at(sinceHours),
      expiresAt: expiresHours === null ? null : at(expiresHours),
      attributes: changeType ? { changeType } : {},
    }),
  );

const stateArb: fc.Arbitrary<IdentityState> = fc
  .record({
    known: fc.boolean(),
    bindings: fc.uniqueArray(bindingArb, {
      maxLength: 5,
      selector: (b) => `${b.channelType}:${b.channelRef}`,
    }),
    signals: fc.array(signalArb, { maxLength: 6 }),
  })
  .map(({ known, bindings, signals }) => ({
    identityId: 'id-1',
    tenantId: null,
    bindingsKnown: known,
    bindings: known ? bindings : [],
    signals,
  }));

function stressPolicy(): Policy {
  const doc = parseDocument(readFileSync(defaultPolicyPath, 'utf8'));
  const rules = doc.get('rules') as { add: (v: unknown) => void };
  const add = (rule: Record<string, unknown>) => rules.add(doc.createNode(rule));
  add({
    id: 'stress-timed',
    when: { signals: ['login_anomaly', 'repeated_failures'] },
    effects: {
      hold: 'medium',
      holdFor: '2h',
      requireVerifiedCallback: 'high',
      excludeRecovery: ['backup_codes'],
    },
    reasons: [{ code: 'stress.timed', admin: 'a', user: 'u' }],
  });
  add({
    id: 'stress-all',
    when: { allOf: [{ signals: ['device_new'] }, { signals: ['sim_swap', 'mfa_fatigue'] }] },
    effects: { hold: 'high', holdFor: '30h', excludeBound: ['passkey_device_bound'], risk: 'high' },
    reasons: [{ code: 'stress.all', admin: 'a', user: 'u' }],
  });
  add({
    id: 'stress-attr',
    when: { signals: ['sim_swap'], attributes: { changeType: ['port_out'] } },
    effects: { deny: 'critical', excludeRecoverableVia: ['passkey_synced'], requireLiveness: 'high' },
    reasons: [{ code: 'stress.attr', admin: 'a', user: 'u' }],
  });
  return loadPolicy(doc.toString(), 'stress.yaml');
}

const POLICIES: Array<[string, Policy]> = [
  ['default', defaultPolicy()],
  ['stress', stressPolicy()],
];

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = seed || 1;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function reorder(s: IdentityState, seed: number): IdentityState {
  return {
    ...s,
    bindings: shuffled(s.bindings, seed).map(
      (b): Binding => ({
        ...b,
        authenticators: shuffled(b.authenticators, seed + 1),
        recovery: shuffled(b.recovery, seed + 2),
      }),
    ),
    signals: shuffled(s.signals, seed + 3),
  };
}

const subset = (a: readonly string[], b: readonly string[]) => a.every((x) => b.includes(x));
const holdEnd = (t: TierRequirement) =>
  t.holdUntil === undefined ? Number.POSITIVE_INFINITY : Date.parse(t.holdUntil);

/** Asserts `after` is at least as strict as `before` for one tier. */
function assertNotRelaxed(before: TierRequirement, after: TierRequirement, where: string) {
  assert.ok(
    outcomeIndex(after.outcome) >= outcomeIndex(before.outcome),
    `${where}: outcome ${before.outcome} → ${after.outcome}`,
  );
  assert.ok(
    subset(after.acceptableAuthenticators, before.acceptableAuthenticators),
    `${where}: acceptable grew`,
  );
  const excludedBefore = before.excludedAuthenticators.map((e) => e.authenticator);
  assert.ok(
    subset(
      excludedBefore,
      after.excludedAuthenticators.map((e) => e.authenticator),
    ),
    `${where}: exclusion dropped`,
  );
  for (const flag of ['requirePhishingResistant', 'requireLiveness', 'requireVerifiedCallback'] as const) {
    assert.ok(!before[flag] || after[flag], `${where}: ${flag} turned off`);
  }
  assert.ok(subset(after.recovery.allowed, before.recovery.allowed), `${where}: recovery grew`);
  if (before.enrolledAcceptable && after.enrolledAcceptable) {
    assert.ok(subset(after.enrolledAcceptable, before.enrolledAcceptable), `${where}: enrolled grew`);
  }
  if (before.outcome === 'hold' && after.outcome === 'hold') {
    assert.ok(
      holdEnd(after) >= holdEnd(before),
      `${where}: hold shortened ${before.holdUntil} → ${after.holdUntil}`,
    );
  }
  assert.ok(after.maxAge <= before.maxAge, `${where}: maxAge grew`);
  for (const a of AUTHENTICATORS) {
    const was = acceptedOn(before, a);
    const now = acceptedOn(after, a);
    assert.ok(was === 'any' || (now !== 'any' && subset(now, was)), `${where}: ${a} counts on more bindings`);
  }
}

/** Where a tier accepts `a`: as a class, or on the bindings its exclusion lists (keys). */
function acceptedOn(t: TierRequirement, a: Authenticator): 'any' | string[] {
  if (t.acceptableAuthenticators.includes(a)) return 'any';
  const on = t.excludedAuthenticators.find((x) => x.authenticator === a)?.acceptableOn ?? [];
  return on.map((b) => `${b.channelType}:${b.channelRef}`);
}

for (const [name, policy] of POLICIES) {
  describe(`properties of the ${name} policy`, () => {
    it('is deterministic: same state in any input order gives the same evaluation', () => {
      fc.assert(
        fc.property(stateArb, fc.integer({ min: 1, max: 1_000_000 }), (s, seed) => {
          const first = evaluate(policy, s, NOW);
          assert.deepEqual(evaluate(policy, s, NOW), first);
          assert.deepEqual(evaluate(policy, reorder(s, seed), NOW), first);
          assert.ok(
            !first.reasons.some((r) => r.code === 'policy.fail_closed'),
            'valid state must not fail closed',
          );
        }),
        { numRuns: 300 },
      );
    });

    it('is monotone: adding any signal never relaxes any tier', () => {
      fc.assert(
        fc.property(stateArb, signalArb, (s, extra) => {
          const before = evaluate(policy, s, NOW);
          const after = evaluate(policy, { ...s, signals: [...s.signals, extra] }, NOW);
          assert.ok(
            RISK_LEVELS.indexOf(after.riskLevel) >= RISK_LEVELS.indexOf(before.riskLevel),
            'risk dropped',
          );
          for (const tier of TIERS)
            assertNotRelaxed(before.tiers[tier], after.tiers[tier], `${tier} + ${extra.code}@${extra.scope}`);
        }),
        { numRuns: 500 },
      );
    });

    it('accepts an authenticator on a binding exactly when that binding alone would have it accepted', () => {
      // The model: which rules fire does not depend on bindings, so whether `a` counts on binding b
      // is whether it would count for the same identity bound through b alone. The class is
      // accepted on b, or b is named in the class's exclusion; nothing else.
      fc.assert(
        fc.property(stateArb, (s) => {
          const e = evaluate(policy, s, NOW);
          for (const b of s.bindings) {
            const alone = evaluate(policy, { ...s, bindings: [b] }, NOW);
            const key = `${b.channelType}:${b.channelRef}`;
            for (const tier of TIERS)
              for (const a of b.authenticators) {
                const on = acceptedOn(e.tiers[tier], a);
                // A class whose secret can be copied between bindings counts everywhere or nowhere.
                const expected = BINDING_SCOPED.includes(a)
                  ? alone.tiers[tier].acceptableAuthenticators.includes(a)
                  : e.tiers[tier].acceptableAuthenticators.includes(a);
                assert.equal(on === 'any' || on.includes(key), expected, `${tier} ${a} on ${key}`);
              }
          }
          // And a binding that does not carry the authenticator is never named for it.
          for (const tier of TIERS)
            for (const x of e.tiers[tier].excludedAuthenticators)
              for (const on of x.acceptableOn ?? [])
                assert.ok(
                  s.bindings.some(
                    (b) =>
                      b.channelType === on.channelType &&
                      b.channelRef === on.channelRef &&
                      b.authenticators.includes(x.authenticator),
                  ),
                  `${tier} ${x.authenticator} named on a binding without it`,
                );
        }),
        { numRuns: 400 },
      );
    });

    it('orders tiers: a higher tier is never weaker than a lower one in the same evaluation', () => {
      fc.assert(
        fc.property(stateArb, (s) => {
          const e = evaluate(policy, s, NOW);
          for (let i = 1; i < TIERS.length; i++) {
            const lower = e.tiers[TIERS[i - 1] as (typeof TIERS)[number]];
            const higher = e.tiers[TIERS[i] as (typeof TIERS)[number]];
            assert.ok(
              outcomeIndex(higher.outcome) >= outcomeIndex(lower.outcome),
              `${TIERS[i]} weaker outcome`,
            );
            assert.ok(
              subset(higher.acceptableAuthenticators, lower.acceptableAuthenticators),
              `${TIERS[i]} accepts more`,
            );
          }
        }),
        { numRuns: 200 },
      );
    });
  });
}

describe('compact tiers (decision format 2)', () => {
  for (const [name, policy] of POLICIES) {
    it(`${name}: expand(compact(tiers)) is exactly what evaluation gave, and never falls back to the whole requirement`, () => {
      fc.assert(
        fc.property(stateArb, fc.integer({ min: -48, max: 48 }), (s, hours) => {
          const now = new Date(NOW.getTime() + hours * 3_600_000);
          const { tiers } = evaluate(policy, s, now);
          const enrolled = enrolledOf(s.bindingsKnown, s.bindings);
          const compact = compactTiers(policy, tiers, enrolled);
          assert.deepStrictEqual(expandTiers(policy, compact, enrolled), tiers);
          const d = {
            ...decisionOf(s, policy),
            format: 2 as const,
            ...compact,
            ...(enrolled ? { enrolled } : {}),
          };
          assert.deepStrictEqual(JSON.parse(JSON.stringify(expandDecisionLazily(policy, d).tiers)), tiers);
          for (const tier of TIERS)
            assert.equal(compact.tiers[tier].requirement, undefined, `${tier} written whole`);
        }),
        { numRuns: 400 },
      );
    });
  }
  it('a tier the policy cannot express is written whole, and still expands to itself', () => {
    const policy = defaultPolicy();
    const { tiers } = evaluate(
      policy,
      { identityId: 'u', tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
      NOW,
    );
    // A requirement no evaluation of this policy gives: a max age the policy does not set.
    const odd = { ...tiers, high: { ...tiers.high, maxAge: tiers.high.maxAge + 1 } };
    const compact = compactTiers(policy, odd, null);
    assert.deepStrictEqual(compact.tiers.high.requirement, odd.high);
    assert.deepStrictEqual(expandTiers(policy, compact, null), odd);
  });
});

describe('the evaluation of identities with no live signal, made once and shared', () => {
  for (const [name, policy] of POLICIES) {
    it(`${name}: equals the full evaluation, whether its signals are none or all expired`, () => {
      fc.assert(
        fc.property(stateArb, fc.integer({ min: -48, max: 48 }), fc.boolean(), (s, hours, strip) => {
          const now = new Date(NOW.getTime() + hours * 3_600_000);
          // Half the runs without signals, so the shared evaluation is taken often.
          const state = strip ? { ...s, signals: [] } : s;
          assert.deepStrictEqual(evaluate(policy, state, now), evaluateFully(policy, state, now));
          // Twice: the second comes from the cache.
          assert.deepStrictEqual(evaluate(policy, state, now), evaluateFully(policy, state, now));
        }),
        { numRuns: 400 },
      );
    });
  }
  it('what it shares cannot be changed by a caller', () => {
    const policy = defaultPolicy();
    const quiet = { identityId: 'q', tenantId: null, bindingsKnown: false, bindings: [], signals: [] };
    const e = evaluate(policy, quiet, NOW);
    assert.throws(() => {
      (e.tiers.high.reasons as string[]).push('x');
    }, TypeError);
    assert.deepStrictEqual(
      evaluate(policy, quiet, NOW).tiers.high.reasons,
      evaluateFully(policy, quiet, NOW).tiers.high.reasons,
    );
  });
});

/** A decision envelope around `tiers`, as the engine would publish it. */
function decisionOf(s: IdentityState, policy: Policy) {
  return {
    identityId: s.identityId,
    tenantId: s.tenantId,
    sequence: 1,
    policyVersion: policy.version,
    policyDigest: policy.digest,
    computedAt: NOW.toISOString(),
    validUntil: NOW.toISOString(),
    riskLevel: 'low' as const,
    signals: [],
    bindingsKnown: s.bindingsKnown,
    trigger: { eventId: 'e', topic: 't', occurredAt: NOW.toISOString() },
  };
}
