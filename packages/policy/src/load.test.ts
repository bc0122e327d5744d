import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { canonicalJson } from './canonical.ts';
import { defaultPolicyPath, loadPolicy, loadPolicyFile, PolicyError, UnknownActionError } from './load.ts';

const text = readFileSync(defaultPolicyPath, 'utf8');

describe('policy digest', () => {
  it('is sha256 over canonical JSON and stable across loads', () => {
    const a = loadPolicy(text);
    const b = loadPolicy(text, 'elsewhere.yaml');
    assert.match(a.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(a.digest, b.digest);
  });

  it('ignores layout, comments and key order (same policy reformatted as JSON)', () => {
    const reordered = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(reordered);
      if (value && typeof value === 'object') {
        return Object.fromEntries(
          Object.entries(value)
            .reverse()
            .map(([k, v]) => [k, reordered(v)]),
        );
      }
      return value;
    };
    const json = JSON.stringify(reordered(parse(text)), null, 4);
    assert.equal(loadPolicy(json).digest, loadPolicy(text).digest);
    const flow = stringify(parse(text), { collectionStyle: 'flow' });
    assert.equal(loadPolicy(flow).digest, loadPolicy(text).digest);
  });

  it('ignores the order inside sets and the unit a duration is written in', () => {
    const doc = parse(text);
    doc.tiers.high.authenticators.reverse();
    doc.signals.sim_swap.window = '336h';
    assert.equal(loadPolicy(JSON.stringify(doc)).digest, loadPolicy(text).digest);
  });

  it('changes with any change of meaning', () => {
    const doc = parse(text);
    doc.signals.mfa_fatigue.threshold = 6;
    assert.notEqual(loadPolicy(JSON.stringify(doc)).digest, loadPolicy(text).digest);
  });

  it('canonical JSON sorts keys and drops undefined members', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: undefined, c: null }] }), '{"a":[{"c":null}],"b":1}');
  });
});

describe('loaded policy', () => {
  const policy = loadPolicyFile();

  it('maps the high and critical actions of docs/policy-behaviours.md, and refuses unknown actions', () => {
    for (const action of ['payout.change', 'bank_transfer.create', 'password.reset', 'api_token.issue']) {
      assert.equal(policy.tierFor(action), 'high', action);
    }
    assert.equal(policy.tierFor('delegated_access.approve'), 'high');
    for (const action of ['mfa.reset', 'admin.role_change', 'secret.export', 'account.recovery.privileged']) {
      assert.equal(policy.tierFor(action), 'critical', action);
    }
    assert.equal(policy.tierFor('profile.view'), 'low');
    assert.equal(policy.tierFor('profile.update'), 'medium');
    for (const unknown of ['payout.changes', '', 'toString', '__proto__', 'constructor']) {
      assert.equal(policy.tierOf(unknown), undefined, unknown);
      assert.throws(
        () => policy.tierFor(unknown),
        (err: unknown) =>
          err instanceof UnknownActionError &&
          err.action === unknown &&
          err.known.includes('payout.change') &&
          err.known.length === policy.actionNames.length,
      );
    }
  });

  it('is frozen all the way down', () => {
    assert.ok(Object.isFrozen(policy));
    assert.ok(Object.isFrozen(policy.tiers.high.authenticators));
    assert.ok(Object.isFrozen(policy.rules[0]?.effects));
    assert.throws(() => (policy.tiers.high.authenticators as string[]).push('sms_otp'));
  });

  it('exposes version and typed signal settings in milliseconds', () => {
    assert.equal(policy.version, '1.1.0');
    assert.equal(policy.signals.sim_swap.windowMs, 14 * 86_400_000);
    assert.equal(policy.signals.device_new.ttlMs, 72 * 3_600_000);
    assert.deepEqual(
      { threshold: policy.signals.mfa_fatigue.threshold, windowMs: policy.signals.mfa_fatigue.windowMs },
      { threshold: 5, windowMs: 600_000 },
    );
    assert.equal(policy.signals.mfa_fatigue.ttlMs, 86_400_000);
    assert.equal(policy.signals.takeover_confirmed.ttlMs, null);
    assert.equal(policy.signals.mailbox_tampered.changes.forwarding_rule_added, 'external_or_unknown');
    assert.equal(policy.evaluation.stalenessMs, 3_600_000);
  });

  it('reports an unreadable file as a PolicyError', () => {
    assert.throws(
      () => loadPolicyFile('/nonexistent/policy.yaml'),
      (error: unknown) =>
        error instanceof PolicyError && /cannot read file/.test(error.issues[0]?.message ?? ''),
    );
  });
});
