import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
