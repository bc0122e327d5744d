import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AUTHENTICATORS, OUTCOMES, RECOVERY_METHODS, type TierRequirement } from '@assurance/schemas';
import fc from 'fast-check';
import { compareRequirements, compareTiers } from './compare.ts';

const requirement = fc.record({
  outcome: fc.constantFrom(...OUTCOMES),
  acceptableAuthenticators: fc.subarray([...AUTHENTICATORS]),
  excludedAuthenticators: fc.constant([]),
  requirePhishingResistant: fc.boolean(),
  requireLiveness: fc.boolean(),
  requireVerifiedCallback: fc.boolean(),
  recovery: fc.record({ allowed: fc.subarray([...RECOVERY_METHODS]), excluded: fc.constant([]) }),
  acrValues: fc.constant([]),
  maxAge: fc.constantFrom(300, 900, 3600),
  reasons: fc.subarray(['a.b', 'c.d', 'e.f']),
}) as fc.Arbitrary<TierRequirement>;

const flip = { same: 'same', stricter: 'looser', looser: 'stricter', route_change: 'route_change' } as const;

test('property: a requirement compared with itself is the same; swapping the two flips the direction', () => {
  fc.assert(
    fc.property(requirement, requirement, (a, b) => {
      assert.equal(compareRequirements(a, a), 'same');
      assert.equal(compareRequirements(b, a), flip[compareRequirements(a, b)]);
    }),
    { numRuns: 2000 },
  );
});

test('property: a stricter outcome is stricter whatever else changes', () => {
  fc.assert(
    fc.property(requirement, requirement, (a, b) => {
      const [x, y] = OUTCOMES.indexOf(a.outcome) < OUTCOMES.indexOf(b.outcome) ? [a, b] : [b, a];
      if (x.outcome !== y.outcome) assert.equal(compareRequirements(x, y), 'stricter');
    }),
  );
});

test('fewer ways in is stricter, more is looser, some of each is a route change', () => {
  const base: TierRequirement = {
    outcome: 'step_up',
    acceptableAuthenticators: ['sms_otp', 'passkey_synced'],
    excludedAuthenticators: [],
    requirePhishingResistant: false,
    requireLiveness: false,
    requireVerifiedCallback: false,
    recovery: { allowed: ['sms_code'], excluded: [] },
    acrValues: [],
    maxAge: 900,
    reasons: [],
  };
  assert.equal(
    compareRequirements(base, { ...base, acceptableAuthenticators: ['passkey_synced'] }),
    'stricter',
  );
  assert.equal(
    compareRequirements(base, { ...base, acceptableAuthenticators: ['sms_otp', 'passkey_synced', 'totp'] }),
    'looser',
  );
  assert.equal(
    compareRequirements(base, { ...base, acceptableAuthenticators: ['passkey_synced', 'totp'] }),
    'route_change',
  );
  assert.equal(compareRequirements(base, { ...base, requirePhishingResistant: true }), 'stricter');
  assert.equal(compareRequirements(base, { ...base, maxAge: 3600 }), 'looser');
  assert.equal(
    compareRequirements(base, { ...base, outcome: 'allow', acceptableAuthenticators: [] }),
    'looser',
  );
  const [t] = compareTiers(
    { low: base, medium: base, high: base, critical: base },
    { low: { ...base, outcome: 'hold', reasons: ['x.y'] }, medium: base, high: base, critical: base },
  );
  assert.deepEqual(t, {
    tier: 'low',
    direction: 'stricter',
    from: 'step_up',
    to: 'hold',
    reasonsAdded: ['x.y'],
    reasonsRemoved: [],
  });
});
