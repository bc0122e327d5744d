import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TierRequirement } from './contract.ts';
import { evaluate } from './evaluate.ts';
import { strictestRequirement } from './fail-closed.ts';
import { at, bind, defaultPolicy, NOW, signal, state } from './test-support.ts';
import { type Completion, type MissingCode, verifyCompletion } from './verify.ts';

const policy = defaultPolicy();
const baseline = evaluate(policy, state(undefined), NOW).tiers;
// Bindings unknown: the swap excludes SMS wholesale and high steps up (nothing to hold on).
const swapped = evaluate(policy, state(undefined, [signal('sim_swap', 'phone:main')]), NOW).tiers;
const takeover = evaluate(policy, state(undefined, [signal('takeover_confirmed', 'identity')]), NOW).tiers;
const withFlags: TierRequirement = {
  ...baseline.critical,
  requireLiveness: true,
  requireVerifiedCallback: true,
};
const fresh = at(-0.01); // 36 s ago
// Push on a device enrolled an hour ago, beside one known for years.
const twoDevices = evaluate(
  policy,
  state(
    [bind('device:new', ['push']), bind('device:old', ['push'])],
    [signal('device_new', 'device:new', { expiresAt: at(70) })],
  ),
  NOW,
).tiers;
const device = (name: string) => {
  const { channelType, channelRef } = bind(name, []);
  return { channelType, channelRef };
};

const table: Array<[string, TierRequirement, Completion, MissingCode[]]> = [
  ['allow needs nothing', baseline.low, {}, []],
  ['medium: TOTP just now satisfies', baseline.medium, { authenticator: 'totp', authenticatedAt: fresh }, []],
  [
    'medium: password alone is not MFA',
    baseline.medium,
    { authenticator: 'password', authenticatedAt: fresh },
    ['authenticator_not_acceptable'],
  ],
  [
    'step-up without an authenticator',
    baseline.medium,
    { authenticatedAt: fresh },
    ['authenticator_required'],
  ],
  [
    'high: SMS code is not acceptable',
    baseline.high,
    { authenticator: 'sms_otp', authenticatedAt: fresh },
    ['authenticator_not_acceptable'],
  ],
  [
    'after a SIM swap, high needs phishing-resistant',
    swapped.high,
    { authenticator: 'totp', authenticatedAt: fresh },
    ['authenticator_not_acceptable', 'phishing_resistant_required'],
  ],
  [
    'after a SIM swap, a security key satisfies high',
    swapped.high,
    { authenticator: 'security_key', authenticatedAt: fresh },
    [],
  ],
  [
    'critical: passkey 10 minutes ago exceeds maxAge 5m',
    baseline.critical,
    { authenticator: 'passkey_device_bound', authenticatedAt: at(-1 / 6) },
    ['reauthentication_required'],
  ],
  [
    'missing authenticatedAt needs reauthentication',
    baseline.high,
    { authenticator: 'totp' },
    ['reauthentication_required'],
  ],
  [
    'an authentication from the future is not evidence',
    baseline.high,
    { authenticator: 'totp', authenticatedAt: at(1) },
    ['reauthentication_required'],
  ],
  [
    'unreadable authenticatedAt',
    baseline.high,
    { authenticator: 'totp', authenticatedAt: 'yesterday' },
    ['reauthentication_required'],
  ],
  [
    'liveness and verified callback when required',
    withFlags,
    { authenticator: 'security_key', authenticatedAt: fresh },
    ['liveness_required', 'verified_callback_required'],
  ],
  [
    'liveness and callback done',
    withFlags,
    { authenticator: 'security_key', authenticatedAt: fresh, liveness: true, verifiedCallback: true },
    [],
  ],
  [
    'hold cannot be satisfied',
    takeover.medium,
    { authenticator: 'security_key', authenticatedAt: fresh },
    ['action_on_hold'],
  ],
  [
    'deny cannot be satisfied',
    takeover.critical,
    { authenticator: 'security_key', authenticatedAt: fresh },
    ['action_denied'],
  ],
  [
    'recovery through a method the tier excludes',
    swapped.medium,
    { authenticator: 'totp', authenticatedAt: fresh, recoveryMethod: 'sms_code' },
    ['recovery_method_not_allowed'],
  ],
  [
    'recovery in person during a takeover is allowed (but the action stays held)',
    takeover.high,
    { recoveryMethod: 'in_person' },
    ['action_on_hold'],
  ],
  [
    'push on the device known for years still counts',
    twoDevices.high,
    { authenticator: 'push', channel: device('device:old'), authenticatedAt: fresh },
    [],
  ],
  [
    'push on the device enrolled an hour ago does not',
    twoDevices.high,
    { authenticator: 'push', channel: device('device:new'), authenticatedAt: fresh },
    ['channel_not_acceptable'],
  ],
  [
    'push on a device nobody bound does not either',
    twoDevices.high,
    { authenticator: 'push', channel: device('device:stranger'), authenticatedAt: fresh },
    ['channel_not_acceptable'],
  ],
  [
    'push without naming the device cannot be judged',
    twoDevices.high,
    { authenticator: 'push', authenticatedAt: fresh },
    ['channel_required'],
  ],
  [
    'a channel does not rescue a class excluded as a whole',
    swapped.high,
    { authenticator: 'sms_otp', channel: device('device:old'), authenticatedAt: fresh },
    ['authenticator_not_acceptable', 'phishing_resistant_required'],
  ],
  [
    'the strictest requirement is never satisfied by an authenticator',
    strictestRequirement(policy, 'low'),
    { authenticator: 'smart_card', authenticatedAt: fresh, liveness: true, verifiedCallback: true },
    ['action_on_hold'],
  ],
];

describe('verifyCompletion', () => {
  for (const [name, requirement, completed, missing] of table) {
    it(name, () => {
      const result = verifyCompletion(requirement, completed, NOW);
      assert.deepEqual(result, { satisfied: missing.length === 0, missing });
    });
  }

  it('fails closed on a malformed outcome', () => {
    const broken = { ...baseline.low, outcome: 'maybe' } as unknown as TierRequirement;
    assert.deepEqual(verifyCompletion(broken, {}, NOW), { satisfied: false, missing: ['action_denied'] });
  });
});
