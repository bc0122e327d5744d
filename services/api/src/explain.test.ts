import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPolicyFile } from '@assurance/policy';
import type { ActiveSignal } from '@assurance/schemas';
import { rulesFiredBy } from './explain.ts';

const policy = loadPolicyFile();
const signal = (
  code: ActiveSignal['code'],
  scope: ActiveSignal['scope'],
  ref: string | null,
): ActiveSignal => ({
  code,
  scope,
  ref,
  since: '2026-01-01T00:00:00.000Z',
  expiresAt: null,
  sourceEventIds: ['e'],
  attributes: {},
});

test('a plain rule fires per matching signal', () => {
  const sim = signal('sim_swap', 'phone', 'a'.repeat(32));
  assert.deepEqual(
    rulesFiredBy(policy.rules, sim, [sim]).map((r) => r.id),
    ['sim-swap', 'synced-passkey-exposed'],
  );
});

test('an allOf rule is behind each of its signals only when all its matchers match', () => {
  const sim = signal('sim_swap', 'phone', 'a'.repeat(32));
  const mail = signal('mailbox_tampered', 'email', 'b'.repeat(32));
  assert.ok(!rulesFiredBy(policy.rules, sim, [sim]).some((r) => r.id === 'phone-and-mailbox'));
  for (const s of [sim, mail]) {
    assert.ok(
      rulesFiredBy(policy.rules, s, [sim, mail]).some((r) => r.id === 'phone-and-mailbox'),
      s.code,
    );
  }
});

test('scopes matter: a SOC channel signal on the identity is the unscoped rule', () => {
  const soc = signal('channel_compromised', 'identity', null);
  assert.deepEqual(
    rulesFiredBy(policy.rules, soc, [soc]).map((r) => r.id),
    ['channel-compromised-unscoped'],
  );
});
