import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { compactTiers, defaultPolicyPath, evaluate, loadPolicy, loadPolicyFile } from '@assurance/policy';
import {
  type Authenticator,
  type Decision,
  DecisionSigner,
  DecisionVerifier,
  generateSigningKey,
  SIGNATURE_HEADER,
} from '@assurance/schemas';
import { DecisionView } from './decision-view.ts';
import { decisionFor, message, takeover } from './test-support.ts';

describe('DecisionView', () => {
  it('keeps the decision with the highest sequence per identity', () => {
    const view = new DecisionView();
    assert.equal(view.apply(message('alice', decisionFor('alice', 2))).kind, 'applied');
    assert.equal(view.apply(message('alice', decisionFor('alice', 5, [takeover()]))).kind, 'applied');
    const lower = view.apply(message('alice', decisionFor('alice', 3)));
    assert.deepEqual(lower, { kind: 'ignored_stale', identityId: 'alice', sequence: 3, current: 5 });
    const equal = view.apply(message('alice', decisionFor('alice', 5)));
    assert.equal(equal.kind, 'ignored_stale');
    const held = view.get('alice').decision;
    assert.equal(held?.sequence, 5);
    assert.equal(held?.tiers.high.outcome, 'hold', 'the republished sequence 5 did not replace the first');
    assert.equal(view.size, 1);
  });

  it('an unreadable newer message marks the identity invalid until a newer valid decision', () => {
    const view = new DecisionView();
    view.apply(message('bob', decisionFor('bob', 1)));
    assert.deepEqual(view.apply(message('bob', '{not json')), {
      kind: 'rejected',
      identityId: 'bob',
      reason: 'invalid_json',
    });
    assert.equal(view.get('bob').invalid, true);
    assert.equal(view.get('bob').decision?.sequence, 1);
    view.apply(message('bob', decisionFor('bob', 2)));
    assert.equal(view.get('bob').invalid, false);
  });

  it('an unreadable message whose x-sequence is not newer cannot hide anything', () => {
    const view = new DecisionView();
    view.apply(message('carol', decisionFor('carol', 4)));
    view.apply(message('carol', { identityId: 'carol' }, { 'x-sequence': '3' }));
    assert.equal(view.get('carol').invalid, false);
    view.apply(message('carol', { identityId: 'carol' }, { 'x-sequence': '9' }));
    assert.equal(view.get('carol').invalid, true);
  });

  it('rejects a decision filed under another identity key, registry-encoded values and keyless messages', () => {
    const view = new DecisionView();
    const mismatch = view.apply(message('dave', decisionFor('eve', 1)));
    assert.deepEqual(mismatch, { kind: 'rejected', identityId: 'dave', reason: 'key_mismatch' });
    assert.equal(view.get('eve').decision, undefined);
    const avro = view.apply({ ...message('frank', null), value: Buffer.from([0, 0, 0, 0, 7, 1, 2]) });
    assert.equal(avro.kind === 'rejected' && avro.reason, 'unsupported_encoding');
    assert.deepEqual(view.apply(message(null, decisionFor('x', 1))), {
      kind: 'rejected',
      identityId: null,
      reason: 'no_key',
    });
  });

  it('a tombstone removes the decision', () => {
    const view = new DecisionView();
    view.apply(message('gina', decisionFor('gina', 1)));
    assert.deepEqual(view.apply(message('gina', null)), { kind: 'tombstone', identityId: 'gina' });
    assert.equal(view.get('gina').decision, undefined);
  });

  it('is complete as of the oldest catch-up over all partitions', () => {
    const view = new DecisionView();
    assert.equal(view.completeAsOf(), undefined);
    view.setPartitions([0, 1, 2]);
    view.markCaughtUp(0, 100);
    view.markCaughtUp(2, 300);
    assert.equal(view.completeAsOf(), undefined, 'partition 1 never caught up');
    view.markCaughtUp(1, 200);
    assert.equal(view.completeAsOf(), 100);
    view.markCaughtUp(0, 50);
    assert.equal(view.completeAsOf(), 100, 'catch-up times never go back');
    view.markCaughtUp(0, 400);
    assert.equal(view.completeAsOf(), 200);
  });
});

describe('DecisionView: decision format 2', () => {
  const policy = loadPolicyFile();
  const v2Of = (d: Decision, enrolled: Authenticator[] | null = null) => {
    const { tiers, ...envelope } = d;
    return {
      ...envelope,
      format: 2,
      ...compactTiers(policy, tiers, enrolled),
      ...(enrolled === null ? {} : { enrolled }),
    };
  };

  it('expands a format 2 decision to exactly the decision it was written from', () => {
    const view = new DecisionView(policy);
    const d = decisionFor('hana', 7, [takeover()]);
    assert.equal(view.apply(message('hana', v2Of(d))).kind, 'applied');
    assert.deepStrictEqual(view.get('hana').decision, d);
    // Smaller on the wire: what the format is for.
    assert.ok(JSON.stringify(v2Of(d)).length * 3 < JSON.stringify(d).length);
  });

  it('expands enrolledAcceptable from the enrolled authenticators', () => {
    const view = new DecisionView(policy);
    const now = new Date();
    const state = {
      identityId: 'ivan',
      tenantId: null,
      bindingsKnown: true,
      bindings: [
        {
          channelType: 'device' as const,
          channelRef: 'd'.repeat(32),
          authenticators: ['passkey_device_bound' as const, 'push' as const],
          recovery: [],
          boundAt: now.toISOString(),
          recoverableVia: [],
        },
      ],
      signals: [],
    };
    const e = evaluate(policy, state, now);
    const d = { ...decisionFor('ivan', 3, [], now), tiers: e.tiers, bindingsKnown: true };
    view.apply(message('ivan', v2Of(d, ['passkey_device_bound', 'push'])));
    assert.deepStrictEqual(view.get('ivan').decision, d);
  });

  it('a decision under another policy, in either format, or a format 2 one with no policy to expand it, fails its identity closed', () => {
    const other = loadPolicy(
      readFileSync(defaultPolicyPath, 'utf8').replace(/^version: .*$/m, 'version: 9.9.9'),
    );
    const unpoliced = new DecisionView();
    unpoliced.apply(message('jo', decisionFor('jo', 1)));
    assert.deepEqual(unpoliced.apply(message('jo', v2Of(decisionFor('jo', 2)))), {
      kind: 'rejected',
      identityId: 'jo',
      reason: 'policy_mismatch',
    });
    assert.equal(unpoliced.get('jo').invalid, true);
    assert.equal(unpoliced.get('jo').decision?.sequence, 1);
    // Its tiers map actions differently from what this reader's policy says: neither format is read.
    const mismatched = new DecisionView(other);
    for (const [seq, d] of [
      [1, decisionFor('jo', 1)],
      [2, v2Of(decisionFor('jo', 2))],
    ] as const) {
      assert.deepEqual(
        mismatched.apply(message('jo', d)),
        {
          kind: 'rejected',
          identityId: 'jo',
          reason: 'policy_mismatch',
        },
        `sequence ${seq}`,
      );
      assert.equal(mismatched.get('jo').invalid, true);
      assert.equal(mismatched.get('jo').decision, undefined);
    }
  });

  it('a decision of a format this reader does not know is rejected, never read as v1', () => {
    const view = new DecisionView(policy);
    const update = view.apply(message('kim', { ...decisionFor('kim', 1), format: 3 }));
    assert.deepEqual(update, { kind: 'rejected', identityId: 'kim', reason: 'invalid_decision' });
    assert.equal(view.get('kim').invalid, true);
  });
});

describe('DecisionView: a memory bound', () => {
  it('holds at most maxIdentities; once one is turned away, the view says it is full', () => {
    const view = new DecisionView(loadPolicyFile(), { maxIdentities: 2 });
    assert.equal(view.apply(message('a', decisionFor('a', 1))).kind, 'applied');
    assert.equal(view.apply(message('b', decisionFor('b', 1))).kind, 'applied');
    assert.equal(view.full, false);
    assert.deepEqual(view.apply(message('c', decisionFor('c', 1))), {
      kind: 'rejected',
      identityId: 'c',
      reason: 'view_full',
    });
    assert.equal(view.full, true);
    assert.equal(view.get('c').decision, undefined);
    // Identities it holds keep being updated.
    assert.equal(view.apply(message('a', decisionFor('a', 2))).kind, 'applied');
    assert.equal(view.get('a').decision?.sequence, 2);
  });
});

describe('DecisionView: signatures, checked when a decision is looked up', () => {
  const engine = new DecisionSigner(generateSigningKey());
  const forger = new DecisionSigner(generateSigningKey());
  const signed = (id: string, seq: number, by = engine, lenient = false) => {
    const text = JSON.stringify(decisionFor(id, seq, lenient ? [] : [takeover()]));
    return message(id, text, { [SIGNATURE_HEADER]: by.sign(text, seq) });
  };
  const view = () =>
    new DecisionView(loadPolicyFile(), { verifier: new DecisionVerifier([engine.publicJwk]) });

  it('holds a decision unchecked until it is looked up, then answers from it only if it verifies', () => {
    const v = view();
    assert.equal(v.apply(signed('ann', 3)).kind, 'applied');
    assert.equal(v.unverified, 1);
    assert.equal(v.get('ann').decision?.sequence, 3);
    assert.equal(v.unverified, 0);
    // A forgery with a higher sequence is held, and dropped at its lookup: the identity fails closed.
    assert.equal(v.apply(signed('ann', 4, forger, true)).kind, 'applied');
    assert.deepEqual(v.get('ann'), { decision: undefined, invalid: true });
    assert.equal(v.rejected.unknown_key, 1);
  });

  it('a held forgery cannot hold the real next decision back: it is checked before it may', () => {
    const v = view();
    v.apply(signed('bo', 1));
    v.apply(signed('bo', 9, forger, true));
    // The engine's real next decision, lower than the forged sequence.
    assert.equal(v.apply(signed('bo', 2)).kind, 'applied');
    assert.deepEqual([v.get('bo').decision?.sequence, v.get('bo').invalid], [2, false]);
  });

  it('checks the rest in the background, in slices', () => {
    const v = view();
    for (let i = 0; i < 50; i++) v.apply(signed(`id-${i}`, 1, i === 7 ? forger : engine));
    while (v.verifyPending(1) > 0);
    assert.equal(v.unverified, 0);
    assert.equal(v.rejected.unknown_key, 1);
    assert.equal(v.get('id-7').invalid, true);
    assert.equal(v.get('id-8').invalid, false);
  });
});
