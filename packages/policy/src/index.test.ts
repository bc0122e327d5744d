import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  defaultPolicyPath,
  evaluate,
  loadPolicy,
  loadPolicyFile,
  PolicyError,
  requirementFor,
  runCases,
  strictestRequirement,
  verifyCompletion,
} from '@assurance/policy';

describe('public API (imported by package name)', () => {
  it('exports the documented functions', () => {
    for (const fn of [
      loadPolicy,
      loadPolicyFile,
      evaluate,
      verifyCompletion,
      strictestRequirement,
      requirementFor,
      runCases,
    ]) {
      assert.equal(typeof fn, 'function');
    }
    assert.ok(PolicyError.prototype instanceof Error);
  });

  it('answers "what does this action need" end to end', () => {
    const policy = loadPolicyFile(defaultPolicyPath);
    const now = new Date('2025-06-01T12:00:00Z');
    const evaluation = evaluate(
      policy,
      { identityId: 'u1', tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
      now,
    );
    assert.equal(requirementFor(policy, evaluation, 'secret.export'), evaluation.tiers.critical);
    assert.throws(() => requirementFor(policy, evaluation, 'no.such.action'), { name: 'UnknownActionError' });
    const requirement = requirementFor(policy, evaluation, 'payout.change');
    assert.deepEqual(
      verifyCompletion(
        requirement,
        { authenticator: 'push_number_match', authenticatedAt: now.toISOString() },
        now,
      ),
      { satisfied: true, missing: [] },
    );
  });
});
