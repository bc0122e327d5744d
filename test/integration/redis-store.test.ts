import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Mutation } from '@assurance/redis';
import { activeSignal, defineScripts, keySpace, SignalStore, signalKey } from '@assurance/redis';
import { Redis } from 'ioredis';
import { endpoints, uniquePrefix } from '../src/harness.ts';

let redis: Redis;
before(async () => {
  redis = new Redis((await endpoints()).REDIS_URL, { enableAutoPipelining: true });
  defineScripts(redis);
});
after(() => redis.quit());

const HOUR = 3_600_000;
const now = Date.parse('2026-11-28T12:00:00Z');

function store() {
  return new SignalStore(redis, keySpace(uniquePrefix()), {
    dedupeWindowMs: 24 * HOUR,
    stateTtlSeconds: 86_400,
  });
}

function raise(eventId: string, occurredAtMs: number, expiresAtMs: number): Mutation {
  return {
    t: 'upsert_signal',
    k: signalKey('sim_swap', 'phone', 'a'.repeat(32)),
    code: 'sim_swap',
    scope: 'phone',
    ref: 'a'.repeat(32),
    sinceMs: occurredAtMs,
    expiresAtMs,
    eventId,
    occurredAtMs,
    attributes: { changeType: 'sim_change' },
  };
}

describe('identity-apply', () => {
  test('applies an event once and ignores its replay', async () => {
    const s = store();
    assert.equal(
      await s.applyIdentity('id-1', 'src|e1', [raise('e1', now - HOUR, now + HOUR)], 't1', now),
      true,
    );
    assert.equal(
      await s.applyIdentity('id-1', 'src|e1', [raise('e1', now - HOUR, now + 5 * HOUR)], 't1', now),
      false,
    );
    const loaded = await s.loadIdentity('id-1');
    assert.equal(loaded.signals.length, 1);
    assert.equal(loaded.signals[0]?.expiresAtMs, now + HOUR);
    assert.equal(loaded.tenantId, 't1');
  });

  test('every key it writes carries a TTL', async () => {
    const s = store();
    await s.applyIdentity('id-ttl', 'src|e1', [raise('e1', now, now + HOUR)], null, now);
    const k = s.keys.identity('id-ttl');
    for (const key of [k.seen, k.signals, k.meta]) assert.ok((await redis.ttl(key)) > 0, `${key} has no TTL`);
  });

  test('a clear older than the raise does not remove it; a newer one does; a late raise stays cleared', async () => {
    const s = store();
    const k = signalKey('sim_swap', 'phone', 'a'.repeat(32));
    const clear = (occurredAtMs: number): Mutation => ({
      t: 'clear_signal',
      k,
      code: 'sim_swap',
      scope: 'phone',
      ref: 'a'.repeat(32),
      occurredAtMs,
    });
    await s.applyIdentity('id-2', 'src|r1', [raise('r1', now - HOUR, now + HOUR)], null, now);
    await s.applyIdentity('id-2', 'src|c-old', [clear(now - 2 * HOUR)], null, now);
    let active = (await s.loadIdentity('id-2')).signals.map((r) => activeSignal(r, now)).filter(Boolean);
    assert.equal(active.length, 1);
    await s.applyIdentity('id-2', 'src|c-new', [clear(now)], null, now);
    await s.applyIdentity('id-2', 'src|r-late', [raise('r-late', now - 30 * 60_000, now + HOUR)], null, now);
    active = (await s.loadIdentity('id-2')).signals.map((r) => activeSignal(r, now)).filter(Boolean);
    assert.equal(active.length, 0);
  });
});

describe('channel-signal and channel-bind', () => {
  test('a binding that comes after the signal still receives it; one before it is fanned out to', async () => {
    const s = store();
    const ref = 'b'.repeat(32);
    await s.channelBind(ref, 'early', 'bound', now - HOUR);
    const r = await s.channelSignal(ref, 'carrier|s1', [raise('s1', now, now + HOUR)], now);
    assert.deepEqual(r, { applied: true, identities: ['early'] });
    const late = await s.channelBind(ref, 'late', 'bound', now + 1000);
    assert.equal(late.signals.length, 1);
    const again = await s.channelSignal(ref, 'carrier|s1', [raise('s1', now, now + HOUR)], now);
    assert.equal(again.applied, false);
    assert.deepEqual(again.identities.sort(), ['early', 'late']);
  });

  test('an older unbind never overrides a newer bind', async () => {
    const s = store();
    const ref = 'c'.repeat(32);
    await s.channelBind(ref, 'x', 'bound', now);
    const stale = await s.channelBind(ref, 'x', 'unbound', now - 1000);
    assert.equal(stale.applied, false);
    const r = await s.channelSignal(ref, 'carrier|s2', [raise('s2', now, now + HOUR)], now);
    assert.deepEqual(r.identities, ['x']);
  });
});

describe('decision-commit and outbox-ack', () => {
  test('compare-and-set on the sequence', async () => {
    const s = store();
    assert.equal(await s.commitDecision('d', 0, '{"sequence":1}', '{"sequence":1}'), true);
    assert.equal(await s.commitDecision('d', 0, '{"sequence":1}', '{"sequence":1}'), false);
    const loaded = await s.loadIdentity('d');
    assert.equal(loaded.seq, 1);
    assert.equal(loaded.outbox, '{"sequence":1}');
    await s.ackOutbox('d', 1);
    const acked = await s.loadIdentity('d');
    assert.equal(acked.outbox, null);
    assert.equal(acked.published, 1);
  });
});

describe('sweep', () => {
  test('a claim leases instead of removing, so a crashed claimer does not lose the expiry', async () => {
    const s = store();
    await s.schedule('a', now - 1);
    await s.schedule('b', now + HOUR);
    assert.deepEqual(await s.claimDue(now, 30_000, 10), ['a']);
    assert.deepEqual(await s.claimDue(now, 30_000, 10), []);
    assert.deepEqual(await s.claimDue(now + 30_001, 30_000, 10), ['a']);
    await s.schedule('a', null);
    assert.deepEqual(await s.claimDue(now + HOUR * 2, 30_000, 10), ['b']);
  });
});

describe('login-observe', () => {
  test('counts failures per kind in their windows and learns devices only from successes', async () => {
    const s = store();
    const base = {
      memoryMs: 30 * 24 * HOUR,
      windows: { mfa_fail: 10 * 60_000, fail: HOUR },
      deviceId: 'dev1',
      network: 'FR|3215',
    };
    const first = await s.observeLogin('l', {
      ...base,
      eventKey: 'src|ok0',
      occurredAtMs: now - HOUR / 2,
      record: [],
      success: true,
    });
    assert.equal(first.newDevice, null, 'no history: a first login is not an anomaly');
    for (let i = 0; i < 3; i++) {
      const r = await s.observeLogin('l', {
        ...base,
        deviceId: 'dev2',
        eventKey: `src|f${i}`,
        occurredAtMs: now + i * 1000,
        record: ['mfa_fail', 'fail'],
        success: false,
      });
      assert.equal(r.counts.mfa_fail, i + 1);
      assert.equal(r.newDevice, true);
    }
    const later = await s.observeLogin('l', {
      ...base,
      eventKey: 'src|late',
      occurredAtMs: now + 11 * 60_000,
      record: [],
      success: false,
    });
    assert.equal(later.counts.mfa_fail, 0, 'outside the 10-minute window');
    assert.equal(later.counts.fail, 3, 'inside the one-hour window');
    const r = await s.observeLogin('l', {
      ...base,
      eventKey: 'src|ok2',
      occurredAtMs: now + 12 * 60_000,
      record: [],
      success: true,
    });
    assert.equal(r.newDevice, false);
    assert.equal(r.newNetwork, false);
  });
});
