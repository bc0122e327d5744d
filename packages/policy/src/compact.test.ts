import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { compactTiers, expandDecision, expandDecisionLazily, PolicyMismatchError } from './compact.ts';
import { evaluate } from './evaluate.ts';
import { defaultPolicyPath, loadPolicy, loadPolicyFile } from './load.ts';

const policy = loadPolicyFile();
const now = new Date('2026-11-28T10:00:00Z');
const { tiers } = evaluate(
  policy,
  { identityId: 'u', tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
  now,
);
const envelope = {
  identityId: 'u',
  tenantId: null,
  sequence: 1,
  policyVersion: policy.version,
  policyDigest: policy.digest,
  computedAt: now.toISOString(),
  validUntil: now.toISOString(),
  riskLevel: 'low' as const,
  signals: [],
  bindingsKnown: false,
  trigger: { eventId: 'e', topic: 't', occurredAt: now.toISOString() },
};

test('a format 1 decision reads as it is', () => {
  const v1 = { ...envelope, tiers };
  assert.equal(expandDecision(policy, v1), v1);
  assert.equal(expandDecisionLazily(policy, v1), v1);
});

test('a format 2 decision under another policy is refused, never expanded with the wrong one', () => {
  const other = loadPolicy(
    readFileSync(defaultPolicyPath, 'utf8').replace(/^version: .*$/m, 'version: 0.0.1'),
  );
  const v2 = { ...envelope, format: 2 as const, ...compactTiers(policy, tiers, null) };
  for (const read of [expandDecision, expandDecisionLazily])
    assert.throws(() => read(other, v2), PolicyMismatchError);
  assert.deepStrictEqual(expandDecision(policy, v2).tiers, tiers);
});
