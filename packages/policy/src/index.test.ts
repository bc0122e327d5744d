import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as api from '@assurance/policy';

describe('public API (imported by package name)', () => {
  it('exports the documented functions', () => {
    for (const name of [
      'loadPolicy',
      'loadPolicyFile',
      'evaluate',
      'verifyCompletion',
      'strictestRequirement',
      'requirementFor',
      'runCases',
    ] as const) {
      assert.equal(typeof api[name], 'function', name);
    }
    assert.ok(api.PolicyError.prototype instanceof Error);
  });

  it('answers "what does this action need" end to end', () => {
    const policy = api.loadPolicyFile(api.defaultPolicyPath);
    const now = new Date('2025-06-01T12:00:00Z');
    const evaluation = api.evaluate(
      policy,
      { identityId: 'u1', tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
      now,
    );
    assert.equal(api.requirementFor(policy, evaluation, 'secret.export'), evaluation.tiers.critical);
    assert.equal(api.requirementFor(policy, evaluation, 'no.such.action'), evaluation.tiers.critical);
    const requirement = api.requirementFor(policy, evaluation, 'payout.change');
    assert.deepEqual(
      api.verifyCompletion(
        requirement,
        { authenticator: 'push_number_match', authenticatedAt: now.toISOString() },
        now,
      ),
      { satisfied: true, missing: [] },
    );
  });
});
