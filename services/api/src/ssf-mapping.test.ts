import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadPolicy, loadPolicyFile } from '@assurance/policy';
import { DEFAULT_MAPPING, mappingFrom } from '@assurance/ssf';

test("the default policy's Shared Signals mapping is the receiver's built-in table, rule for rule", () => {
  const policy = loadPolicyFile();
  assert.ok(policy.sharedSignals?.mapping, 'the default policy spells the table out');
  assert.deepEqual(mappingFrom(policy.sharedSignals.mapping), DEFAULT_MAPPING);
  assert.equal(policy.sharedSignals.whenUnavailable, 'high');
});

test('a policy naming an event the receiver does not know is refused, naming it', () => {
  const policy = loadPolicyFile();
  const mapping = policy.sharedSignals?.mapping;
  assert.ok(mapping);
  assert.throws(
    () => mappingFrom([...mapping, { event: 'credentialCompromized', clears: 'x' }]),
    /does not know: credentialCompromized/,
  );
});

test('a rule must raise or clear, not both or neither', () => {
  // The default policy with its table replaced by one rule.
  const base = readFileSync(loadPolicyFile().source, 'utf8').replace(/\nsharedSignals:[\s\S]*$/, '\n');
  const text = (rule: string) => `${base}sharedSignals:\n  mapping:\n    - ${rule}\n`;
  assert.throws(
    () => loadPolicy(text('{ event: riskLevelChange }')),
    /either raises a signal or clears a family/,
  );
  assert.throws(
    () =>
      loadPolicy(
        text(
          '{ event: riskLevelChange, clears: risk-level, raise: { kind: sim_swap, severity: high, ttl: 1d } }',
        ),
      ),
    /either raises a signal or clears a family/,
  );
  assert.throws(
    () => loadPolicy(text('{ event: riskLevelChange, raise: { kind: telepathy, severity: high, ttl: 1d } }')),
    /kind/,
  );
});
