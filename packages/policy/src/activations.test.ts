import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rulesFiredBy } from './activations.ts';
import type { ActiveSignal } from './contract.ts';
import { loadPolicyFile } from './load.ts';

const policy = loadPolicyFile();
const NOW_MS = Date.parse('2026-06-01T00:00:00.000Z');
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
    rulesFiredBy(policy.rules, sim, [sim], NOW_MS).map((r) => r.id),
    ['sim-swap', 'synced-passkey-exposed'],
  );
});

test('an allOf rule is behind each of its signals only when all its matchers match', () => {
  const sim = signal('sim_swap', 'phone', 'a'.repeat(32));
  const mail = signal('mailbox_tampered', 'email', 'b'.repeat(32));
  assert.ok(!rulesFiredBy(policy.rules, sim, [sim], NOW_MS).some((r) => r.id === 'phone-and-mailbox'));
  for (const s of [sim, mail]) {
    assert.ok(
      rulesFiredBy(policy.rules, s, [sim, mail], NOW_MS).some((r) => r.id === 'phone-and-mailbox'),
      s.code,
    );
  }
});

test('scopes matter: a SOC channel signal on the identity is the unscoped rule', () => {
  const soc = signal('channel_compromised', 'identity', null);
  assert.deepEqual(
    rulesFiredBy(policy.rules, soc, [soc], NOW_MS).map((r) => r.id),
    ['channel-compromised-unscoped'],
  );
});

test('a signal no longer in force makes no rule fire', () => {
  const sim = { ...signal('sim_swap', 'phone', 'a'.repeat(32)), expiresAt: '2026-05-01T00:00:00.000Z' };
  assert.deepEqual(rulesFiredBy(policy.rules, sim, [sim], NOW_MS), []);
});
