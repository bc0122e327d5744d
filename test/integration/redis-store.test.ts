import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AssuranceError } from '@assurance/core';
import type { LoginObservation, LoginRecord, Mutation, RedisConnection } from '@assurance/redis';
import {
  activeSignal,
  DEFAULT_CAPS,
  keySpace,
  MetaStore,
  memberField,
  pack,
  parseMember,
  StateStore,
  signalKey,
  socKey,
  socPrefix,
  tagSafe,
  toIdentityState,
  unpack,
} from '@assurance/redis';
import type { SignalKind } from '@assurance/schemas';
import { storeRedis, uniquePrefix } from '../src/harness.ts';

/**
 * The Lua scripts on the real Redis, one behaviour per test: the merges that make replays and
 * reordering harmless, and each finding of the state-model review as a regression
 * (docs/state.md). The property test (state-oracle.test.ts) covers the combinations.
 */

let redis: RedisConnection;
before(async () => {
  redis = await storeRedis();
});
after(() => redis.quit());

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// The scripts' expiries are absolute (PEXPIREAT) and Redis measures them against its own clock: a
// fixed date here would expire these keys the day after it (this test failed on that day).
const now = Math.floor(Date.now() / HOUR) * HOUR;
const PHONE = 'a'.repeat(32);
const PHONE2 = 'b'.repeat(32);
const SYNC = 'c'.repeat(32);

function store(opts: { caps?: { signals: number; bindings: number; known: number } } = {}) {
  return new StateStore(redis, keySpace(uniquePrefix()), {
    keepMs: 7 * DAY,
    stateTtlMs: 30 * DAY,
    caps: opts.caps ?? DEFAULT_CAPS,
  });
}

function swap(ev: string, atMs: number, expMs: number, ref = PHONE): Mutation {
  return {
    t: 'r',
    k: signalKey('sim_swap', 'phone', ref),
    code: 'sim_swap',
    scope: 'phone',
    ref,
    since: atMs,
    exp: expMs,
    ev,
    at: atMs,
    attrs: { changeType: 'sim_change' },
  };
}
const clearSwap = (atMs: number, ref = PHONE): Mutation => ({
  t: 'c',
  k: signalKey('sim_swap', 'phone', ref),
  code: 'sim_swap',
  scope: 'phone',
  ref,
  at: atMs,
});
const bind = (ref: string, atMs: number, via?: string[]): Mutation => ({
  t: 'b',
  ref,
  at: atMs,
  type: via ? 'sync_account' : 'phone',
  auth: 2,
  rec: 2,
  bat: atMs,
  ...(via ? { via } : {}),
});
const unbind = (ref: string, atMs: number): Mutation => ({ t: 'u', ref, at: atMs, type: 'phone' });
/** As a channel hands it on: through a membership made at `mop`, maybe by a sync account's route. */
const fanout = (m: Mutation, mop = now - 1000, via?: string) =>
  ({ ...m, mop, ...(via ? { via } : {}) }) as Mutation;

async function live(s: StateStore, id: string, at = now) {
  const r = await s.read(id, at);
  return r ? toIdentityState(r, at).signals : [];
}

describe('identity-apply: merges', () => {
  test('a replay changes nothing; a second source of the same signal extends it and is recorded', async () => {
    const s = store();
    const first = await s.apply('id', { mutations: [swap('e1', now - HOUR, now + HOUR)] }, now);
    assert.equal(first.changed, true);
    const replay = await s.apply('id', { mutations: [swap('e1', now - HOUR, now + HOUR)] }, now);
    assert.equal(replay.changed, false);
    const other = await s.apply('id', { mutations: [swap('e2', now - 2 * HOUR, now + 3 * HOUR)] }, now);
    assert.equal(other.changed, true);
    const [sig] = other.state?.signals ?? [];
    assert.equal(sig?.sinceMs, now - 2 * HOUR, 'the earliest since');
    assert.equal(sig?.expiresAtMs, now + 3 * HOUR, 'the latest expiry');
    assert.deepEqual(sig?.sourceEventIds, ['e2', 'e1'], 'in the order of the raises');
  });

  test('raise and clear in either order give the same state; at equal times the clear wins', async () => {
    const a = store();
    const b = store();
    await a.apply('id', { mutations: [swap('r', now - HOUR, now + HOUR)] }, now);
    await a.apply('id', { mutations: [clearSwap(now - HOUR / 2)] }, now);
    await b.apply('id', { mutations: [clearSwap(now - HOUR / 2)] }, now);
    await b.apply('id', { mutations: [swap('r', now - HOUR, now + HOUR)] }, now);
    assert.deepEqual(await live(a, 'id'), []);
    assert.deepEqual(await live(b, 'id'), []);
    const tie = store();
    await tie.apply('id', { mutations: [swap('r', now, now + HOUR), clearSwap(now)] }, now);
    assert.deepEqual(await live(tie, 'id'), []);
    const newer = store();
    await newer.apply('id', { mutations: [clearSwap(now - HOUR)] }, now);
    await newer.apply('id', { mutations: [swap('r2', now, now + HOUR)] }, now);
    assert.equal((await live(newer, 'id')).length, 1, 'a raise after the clear is live');
  });

  test('the tenant is the newest event’s, whatever the arrival order', async () => {
    const a = store();
    await a.apply('id', { mutations: [], tenant: { id: 'new', at: now } }, now);
    await a.apply('id', { mutations: [], tenant: { id: 'old', at: now - HOUR } }, now);
    assert.equal((await a.read('id', now))?.tenantId, 'new');
  });
});

describe('identity-apply: bindings (finding 3)', () => {
  test('a late or replayed unbind older than the binding changes nothing, not even the signals', async () => {
    const s = store();
    await s.apply('id', { mutations: [bind(PHONE, now - 3 * HOUR)] }, now);
    await s.apply('id', { mutations: [fanout(swap('s', now - 2 * HOUR, now + DAY))] }, now);
    await s.apply('id', { mutations: [unbind(PHONE, now - HOUR)] }, now);
    assert.deepEqual(await live(s, 'id'), [], 'unbinding drops what the phone brought');
    // Rebound later, inheriting the swap again from the channel.
    await s.apply(
      'id',
      {
        mutations: [
          bind(PHONE, now - HOUR / 2),
          fanout(swap('s', now - 2 * HOUR, now + DAY), now - HOUR / 2),
        ],
      },
      now,
    );
    assert.equal((await live(s, 'id')).length, 1);
    const replay = await s.apply('id', { mutations: [unbind(PHONE, now - HOUR)] }, now);
    assert.equal(replay.changed, false);
    assert.equal((await live(s, 'id')).length, 1, 'the swap stays while the phone is bound');
  });

  test('a channel signal for a channel the identity unbound is not taken; one it never heard of is', async () => {
    const s = store();
    await s.apply('id', { mutations: [bind(PHONE, now - 2 * HOUR), unbind(PHONE, now - HOUR)] }, now);
    // Through the membership the old bind made: the unbind on record is newer.
    await s.apply('id', { mutations: [fanout(swap('s', now, now + DAY), now - 2 * HOUR)] }, now);
    assert.deepEqual(await live(s, 'id'), []);
    // Through a membership newer than the unbind: a bind on its way; taken.
    await s.apply('racing', { mutations: [bind(PHONE, now - 2 * HOUR), unbind(PHONE, now - HOUR)] }, now);
    await s.apply('racing', { mutations: [fanout(swap('s', now, now + DAY), now - 1000)] }, now);
    assert.equal((await live(s, 'racing')).length, 1);
    await s.apply('id', { mutations: [fanout(swap('s2', now, now + DAY, PHONE2))] }, now);
    assert.equal((await live(s, 'id')).length, 1, 'the bind that made it a member may still be on its way');
  });

  test('a sync account holds the channels it recovers through: unbinding it drops their signals', async () => {
    const s = store();
    await s.apply('id', { mutations: [bind(SYNC, now - HOUR, [`phone:${PHONE}`])] }, now);
    await s.apply('id', { mutations: [fanout(swap('s', now, now + DAY), now - HOUR, SYNC)] }, now);
    assert.equal((await live(s, 'id')).length, 1);
    const r = await s.apply('id', { mutations: [unbind(SYNC, now + 1)] }, now);
    assert.deepEqual(await live(s, 'id'), []);
    // The owner withdraws the route's membership on the phone's side (the router cannot know it).
    assert.deepEqual(r.withdrawn, [{ syncRef: SYNC, channelRef: PHONE, opMs: now + 1 }]);
  });

  test('rebinding a sync account with other routes withdraws the dropped ones, and their signals go', async () => {
    const s = store();
    await s.apply('id', { mutations: [bind(SYNC, now - HOUR, [`phone:${PHONE}`, `phone:${PHONE2}`])] }, now);
    await s.apply(
      'id',
      {
        mutations: [
          fanout(swap('s', now, now + DAY), now - HOUR, SYNC),
          fanout(swap('s2', now, now + DAY, PHONE2), now - HOUR, SYNC),
        ],
      },
      now,
    );
    const r = await s.apply('id', { mutations: [bind(SYNC, now, [`phone:${PHONE2}`])] }, now);
    assert.deepEqual(r.withdrawn, [{ syncRef: SYNC, channelRef: PHONE, opMs: now }]);
    assert.deepEqual(
      (await live(s, 'id')).map((x) => x.ref),
      [PHONE2],
    );
  });

  test('a fan-out through a stale membership is not taken: one older than STATE_TTL, or a dropped route', async () => {
    const s = store();
    // A membership as old as the state lifetime, with nothing on record here: a state since forgotten.
    const r = await s.apply('gone', { mutations: [fanout(swap('s', now, now + DAY), now - 31 * DAY)] }, now);
    assert.equal(r.state, null, 'nothing kept for a fan-out it did not take');
    // A young membership with nothing on record: the bind is on its way; taken.
    await s.apply('racing', { mutations: [fanout(swap('s', now, now + DAY), now - 1000)] }, now);
    assert.equal((await live(s, 'racing')).length, 1);
    // Through a route the sync account no longer has.
    await s.apply('moved', { mutations: [bind(SYNC, now - HOUR, [`phone:${PHONE2}`])] }, now);
    await s.apply('moved', { mutations: [fanout(swap('s', now, now + DAY), now - 2 * HOUR, SYNC)] }, now);
    assert.deepEqual(await live(s, 'moved'), []);
  });
});

describe('identity-apply: SOC signals (finding 2)', () => {
  const soc = (scope: 'identity' | 'phone', ref: string | null, kind: SignalKind, at: number): Mutation => ({
    t: 'r',
    k: socKey(scope, ref, 'INC-4711', kind),
    pk: `${socPrefix(scope, ref, 'INC-4711')}*`,
    code: scope === 'identity' ? 'takeover_confirmed' : 'channel_compromised',
    scope,
    ref,
    since: at,
    exp: -1,
    ev: `soc-${kind}`,
    at,
    attrs: { kind, signalId: 'INC-4711' },
  });
  test('clearing an incident on the phone leaves the same incident id on the identity', async () => {
    const s = store();
    await s.apply('alice', { mutations: [bind(PHONE, now - DAY)] }, now);
    await s.apply(
      'alice',
      {
        mutations: [
          soc('identity', null, 'account_takeover', now),
          fanout(soc('phone', PHONE, 'sim_swap', now)),
        ],
      },
      now,
    );
    await s.apply(
      'alice',
      {
        mutations: [
          {
            t: 'c',
            k: socKey('phone', PHONE, 'INC-4711', 'sim_swap'),
            code: 'channel_compromised',
            scope: 'phone',
            ref: PHONE,
            at: now + 1,
          },
        ],
      },
      now,
    );
    const left = await live(s, 'alice');
    assert.deepEqual(
      left.map((x) => x.code),
      ['takeover_confirmed'],
    );
  });
  test('a clear naming no kind clears every kind of the id on that subject and blocks their late raises', async () => {
    const s = store();
    await s.apply('bob', { mutations: [soc('identity', null, 'account_takeover', now)] }, now);
    await s.apply(
      'bob',
      {
        mutations: [
          {
            t: 'cp',
            p: socPrefix('identity', null, 'INC-4711'),
            code: 'takeover_confirmed',
            scope: 'identity',
            ref: null,
            at: now + 10,
          },
        ],
      },
      now,
    );
    assert.deepEqual(await live(s, 'bob'), []);
    await s.apply('bob', { mutations: [soc('identity', null, 'credential_leak', now + 5)] }, now);
    assert.deepEqual(await live(s, 'bob'), [], 'a raise from before the clear, arriving late');
    await s.apply('bob', { mutations: [soc('identity', null, 'credential_leak', now + 20)] }, now);
    assert.equal((await live(s, 'bob')).length, 1, 'a raise after it is live');
  });
});

describe('identity-apply: time', () => {
  test('an open-ended signal keeps the state forever; the state is forgotten by the engine clock otherwise', async () => {
    const s = store();
    const open: Mutation = { ...swap('x', now, -1), k: 'open', exp: -1 } as Mutation;
    const r = await s.apply('forever', { mutations: [open] }, now);
    assert.equal(r.horizonMs, -1);
    assert.equal(await redis.pttl(s.keys.identity('forever')), -1);
    const later = now + 1000 * DAY;
    assert.equal((await live(s, 'forever', later)).length, 1, 'an "until cleared" signal never ages out');
    const t = await s.apply('brief', { mutations: [swap('y', now, now + HOUR)] }, now);
    assert.equal(t.horizonMs, now + 30 * DAY);
    assert.ok((await redis.pexpiretime(s.keys.identity('brief'))) === now + 30 * DAY);
    assert.equal(await s.read('brief', now + 30 * DAY), null, 'forgotten at its horizon, by our clock');
    const fresh = await s.apply('brief', { mutations: [] }, now + 31 * DAY);
    assert.equal(fresh.state, null, 'a state past its horizon is not resurrected');
  });

  test('a login cannot wipe the history: failures counted in any arrival order reach the same triggers', async () => {
    const login = (i: number, atMs: number): LoginRecord => ({
      h: `h${i}`,
      at: atMs,
      kinds: ['fail'],
      windows: { fail: HOUR },
      thresholds: { fail: 3 },
      cap: { fail: 10 },
      device: 'dev',
      network: '',
      success: false,
      memory: 30 * DAY,
    });
    const times = [0, 1, 2, 3].map((i) => now + i * 60_000);
    const inOrder = store();
    let last: LoginObservation | null = null;
    for (const [i, at] of times.entries())
      last = (await inOrder.apply('u', { mutations: [], login: login(i, at) }, now + HOUR)).observation;
    const reversed = store();
    let lastR: LoginObservation | null = null;
    for (const [i, at] of [...times.entries()].reverse())
      lastR = (await reversed.apply('u', { mutations: [], login: login(i, at) }, now + HOUR)).observation;
    const span = (o: typeof last) => {
      const t = o?.triggers.fail;
      return t && { firstMs: t.firstMs, lastMs: t.lastMs, count: t.count };
    };
    assert.deepEqual(span(lastR), span(last));
    assert.deepEqual(span(last), { firstMs: times[2], lastMs: times[3], count: 4 });
    assert.equal(
      last?.triggers.fail?.ownCount,
      4,
      'the last login in order reached it itself, with 4 in its window',
    );
    assert.equal(lastR?.triggers.fail?.ownCount, 0, 'the earliest, arriving last, did not');
    const replay = (
      await reversed.apply('u', { mutations: [], login: login(0, times[0] as number) }, now + HOUR)
    ).observation;
    assert.deepEqual(span(replay), span(last), 'a replayed login counts once');
  });
});

describe('identity-apply: keys, owners and caps (findings 6 and 9)', () => {
  test('hash tags are injective: a{b and a%7Bb never share a key', () => {
    const k = keySpace('p:');
    assert.notEqual(k.identity('a{b'), k.identity('a%7Bb'));
    assert.notEqual(tagSafe('a%7Bb'), tagSafe('a{b'));
    assert.equal(tagSafe('a}b').includes('}'), false);
  });
  test('a key holding another identity’s state stops with state_corrupt, not a retry', async () => {
    const s = store();
    await s.apply('owner', { mutations: [swap('s', now, now + HOUR)] }, now);
    // Read and written back (not COPY): the two keys live in different slots of a cluster.
    await redis.set(s.keys.identity('intruder'), (await redis.getBuffer(s.keys.identity('owner'))) as Buffer);
    await assert.rejects(
      s.apply('intruder', { mutations: [] }, now),
      (err: unknown) => err instanceof AssuranceError && err.code === 'state_corrupt',
    );
    await assert.rejects(
      s.read('intruder', now),
      (err: unknown) => err instanceof AssuranceError && err.code === 'state_corrupt',
    );
  });
  test('a stored scope the scripts do not know stops with state_corrupt, in the script and in a read', async () => {
    const s = store();
    await s.apply('odd', { mutations: [swap('s', now, now + HOUR)] }, now);
    const key = s.keys.identity('odd');
    const state = unpack((await redis.getBuffer(key)) as Buffer) as { s: Record<string, unknown[]> };
    for (const r of Object.values(state.s)) r[1] = 99;
    await redis.set(key, pack(state));
    for (const attempt of [s.apply('odd', { mutations: [] }, now), s.read('odd', now)])
      await assert.rejects(
        attempt,
        (err: unknown) => err instanceof AssuranceError && err.code === 'state_corrupt',
      );
  });
  test('an unknown mutation is a script failure (quarantined), not "Redis unavailable"', async () => {
    const s = store();
    await assert.rejects(
      s.apply('x', { mutations: [{ t: 'zz' } as unknown as Mutation] }, now),
      (err: unknown) => err instanceof AssuranceError && err.code === 'script_failed',
    );
  });
  test('past a cap nothing is dropped silently: the identity fails closed', async () => {
    const s = store({ caps: { signals: 2, bindings: 2, known: 2 } });
    for (const ref of ['1', '2', '3'].map((c) => c.repeat(32))) {
      await s.apply('full', { mutations: [swap(ref, now, now + DAY, ref)] }, now);
    }
    const r = await s.read('full', now);
    assert.ok(r?.overflowSinceMs);
    const state = toIdentityState(r as NonNullable<typeof r>, now);
    assert.ok(
      state.signals.some((x) => x.code === 'signal_unreadable' && x.attributes.reason === 'state_overflow'),
    );
  });
});

describe('decisions: commit and published', () => {
  test('compare-and-set on the sequence; sequences only grow', async () => {
    const s = store();
    await s.apply('d', { mutations: [], tenant: { id: 't', at: now } }, now);
    assert.equal(await s.commit('d', 0, 5, 'dg1', now + HOUR), 'ok');
    assert.equal(await s.commit('d', 0, 6, 'dg2', now + HOUR), 'moved');
    assert.equal(await s.commit('nobody', 0, 1, 'dg', now), 'missing');
    await assert.rejects(s.commit('d', 5, 5, 'dg', now), (err: unknown) => err instanceof AssuranceError);
    const r = await s.read('d', now);
    assert.equal(r?.seq, 5);
    assert.equal(r?.digest, 'dg1');
    assert.equal(r?.published, 0);
    assert.equal(await s.published('d', 5, 'dg1'), 'ok');
    assert.equal((await s.read('d', now))?.published, 5);
    assert.equal(await s.published('d', 5, 'dg1'), 'ok', 'the same acknowledgement twice changes nothing');
  });

  test('an acknowledgement older than the last published one makes the newest owed again', async () => {
    const s = store();
    await s.apply('late', { mutations: [], tenant: { id: 't', at: now } }, now);
    assert.equal(await s.commit('late', 0, 5, 'dg5', now + HOUR), 'ok');
    assert.equal(await s.commit('late', 5, 9, 'dg9', now + HOUR), 'ok');
    assert.equal(await s.published('late', 9, 'dg9'), 'ok');
    // Decision 5's send outlived its partition and was acknowledged after 9: it may stand last.
    assert.equal(await s.published('late', 5, 'dg5'), 'superseded');
    const r = await s.read('late', now);
    assert.equal(r?.seq, 9, 'the newest recorded decision stays');
    assert.equal(r?.published, 5, 'it is owed again: the last published is the late one');
    assert.equal(r?.publishedDigest, 'dg5');
  });

  test('with offsets, the decision standing last on the topic is what counts, whichever is acknowledged first', async () => {
    const s = store();
    for (const id of ['late-first', 'late-second']) {
      await s.apply(id, { mutations: [], tenant: { id: 't', at: now } }, now);
      assert.equal(await s.commit(id, 0, 5, 'dg5', now + HOUR), 'ok');
      assert.equal(await s.commit(id, 5, 9, 'dg9', now + HOUR), 'ok');
    }
    // 9 landed at offset 10, the late 5 at 11 (after it); 9's acknowledgement recorded first.
    assert.equal(await s.published('late-first', 9, 'dg9', { partition: 0, offset: '10' }), 'ok');
    assert.equal(await s.published('late-first', 5, 'dg5', { partition: 0, offset: '11' }), 'superseded');
    assert.equal((await s.read('late-first', now))?.published, 5, 'the newest is owed again');
    // The same landing, 5's acknowledgement recorded first: 9's must not hide that 5 stands last.
    assert.equal(await s.published('late-second', 5, 'dg5', { partition: 0, offset: '11' }), 'superseded');
    assert.equal(await s.published('late-second', 9, 'dg9', { partition: 0, offset: '10' }), 'superseded');
    assert.equal((await s.read('late-second', now))?.published, 5);
    // The owner sends 9 again; it lands last, and nothing is owed.
    assert.equal(await s.published('late-second', 9, 'dg9', { partition: 0, offset: '12' }), 'ok');
    assert.equal((await s.read('late-second', now))?.published, 9);
    // Partitions were added and the identity's decisions moved: offsets start over there.
    assert.equal(await s.commit('late-second', 9, 12, 'dg12', now + HOUR), 'ok');
    assert.equal(await s.published('late-second', 12, 'dg12', { partition: 3, offset: '2' }), 'ok');
    assert.equal((await s.read('late-second', now))?.published, 12);
  });

  test('an identity with three bindings and five live signals fits in 1 KiB', async () => {
    const s = store();
    // Ids as long as most producers make them (UUIDs), the decision digest as the decider writes it.
    const id = 'user-1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed';
    const uuid = (n: number) => `6f1c2a7e-0b4d-4e8a-9c3f-${String(n).padStart(12, '0')}`;
    const refs = ['d', 'e', 'f'].map((c) => c.repeat(32));
    await s.apply(id, { mutations: refs.map((ref, i) => bind(ref, now - i)) }, now);
    const signals: Mutation[] = [
      swap(uuid(1), now, now + 14 * DAY, refs[0]),
      {
        ...swap(uuid(2), now, now + 7 * DAY, refs[1]),
        k: signalKey('mailbox_tampered', 'email', refs[1] as string),
        code: 'mailbox_tampered',
        scope: 'email',
        attrs: { change: 'forwarding_rule_added', external: 'true' },
      } as Mutation,
      {
        ...swap(uuid(3), now, now + 3 * DAY, refs[2]),
        k: signalKey('device_new', 'device', refs[2] as string),
        code: 'device_new',
        scope: 'device',
        attrs: { change: 'enrolled' },
      } as Mutation,
      {
        t: 'r',
        k: signalKey('mfa_fatigue', 'identity', null),
        code: 'mfa_fatigue',
        scope: 'identity',
        ref: null,
        since: now,
        exp: now + DAY,
        ev: uuid(4),
        at: now,
        attrs: { failures: '5' },
      },
      {
        t: 'r',
        k: socKey('identity', null, 'INC-2026-000123', 'account_takeover'),
        code: 'takeover_confirmed',
        scope: 'identity',
        ref: null,
        since: now,
        exp: -1,
        ev: uuid(5),
        at: now,
        attrs: {
          kind: 'account_takeover',
          severity: 'high',
          signalId: 'INC-2026-000123',
          raisedBy: 'analyst-7',
        },
      },
    ];
    await s.apply(id, { mutations: signals, tenant: { id: 'tenant-a', at: now } }, now);
    await s.commit(id, 0, 2 ** 32 + 1, 'x'.repeat(16), now + HOUR);
    // What Redis holds for it, key and bookkeeping included (SAMPLES 0: all of it).
    const bytes = Number(await redis.call('MEMORY', 'USAGE', s.keys.identity(id), 'SAMPLES', '0'));
    assert.ok(bytes <= 1024, `${bytes} bytes`);
    const state = await s.read(id, now);
    assert.deepEqual(state?.signals.flatMap((r) => r.sourceEventIds).sort(), [1, 2, 3, 4, 5].map(uuid));
  });
});

describe('channels: signals, members and their lifetimes (finding 1)', () => {
  const FAN = { pageSize: 500, generation: 'g1', trigger: '{}' };
  const direct = (id: string) => ({ identityId: id, via: null });
  test('a member bound after the signal inherits it; one bound before is fanned out to; replays still fan out', async () => {
    const s = store();
    await s.channelBind(PHONE, direct('early'), 'bound', now - HOUR, now + DAY, now);
    const r = await s.channelSignal(PHONE, [swap('s1', now, now + HOUR)], now, FAN);
    assert.equal(r.changed, true);
    assert.deepEqual(r.members, [{ ...direct('early'), opMs: now - HOUR }]);
    const late = await s.channelBind(PHONE, direct('late'), 'bound', now + 1000, now + DAY, now);
    assert.equal(late.signals.length, 1);
    const again = await s.channelSignal(PHONE, [swap('s1', now, now + HOUR)], now, FAN);
    assert.equal(again.changed, false);
    assert.deepEqual(again.members.map((m) => m.identityId).sort(), ['early', 'late']);
  });

  test('an older unbind never overrides a newer bind', async () => {
    const s = store();
    await s.channelBind(PHONE, direct('x'), 'bound', now, now + DAY, now);
    const stale = await s.channelBind(PHONE, direct('x'), 'unbound', now - 1000, now + DAY, now);
    assert.equal(stale.applied, false);
    const r = await s.channelSignal(PHONE, [swap('s2', now, now + HOUR)], now, FAN);
    assert.deepEqual(r.members, [{ ...direct('x'), opMs: now }]);
  });

  test('a member lives as long as its identity says, however long ago it bound', async () => {
    const s = store();
    const bound = now - 500 * DAY;
    await s.channelBind(PHONE, direct('loyal'), 'bound', bound, bound + 30 * DAY, now);
    await s.channelBind(PHONE, direct('gone'), 'bound', bound, bound + 30 * DAY, now);
    // Only the active identity's owner extends its membership (membership.ts).
    await s.channelBind(PHONE, direct('loyal'), 'touch', bound, now + 30 * DAY, now);
    const r = await s.channelSignal(PHONE, [swap('port', now, now + HOUR)], now, FAN);
    assert.deepEqual(
      r.members,
      [{ ...direct('loyal'), opMs: bound }],
      'the forgotten member is pruned, the loyal one reached',
    );
    assert.equal(await redis.hexists(s.keys.channel(PHONE).members, memberField(direct('gone'))), 0);
    assert.ok((await redis.pexpiretime(s.keys.channel(PHONE).members)) >= now + 30 * DAY);
  });

  test('an unbind is kept for the late-event window, then dropped as the channel fans out', async () => {
    const s = store();
    const members = s.keys.channel(PHONE).members;
    await s.channelBind(PHONE, direct('recent'), 'bound', now - 9 * DAY, now + DAY, now);
    await s.channelBind(PHONE, direct('recent'), 'unbound', now - 6 * DAY, now + DAY, now);
    await s.channelBind(PHONE, direct('old'), 'bound', now - 9 * DAY, now + DAY, now);
    await s.channelBind(PHONE, direct('old'), 'unbound', now - 8 * DAY, now + DAY, now);
    await s.channelSignal(PHONE, [swap('s', now, now + HOUR)], now, FAN);
    assert.equal(
      await redis.hexists(members, memberField(direct('recent'))),
      1,
      'a late bind must still lose to it',
    );
    assert.equal(await redis.hexists(members, memberField(direct('old'))), 0);
  });

  test('recovery routes are members of their own: direct and via memberships are told apart', async () => {
    const s = store();
    const via = { identityId: 'carol', via: SYNC };
    await s.channelBind(PHONE, via, 'bound', now, now + DAY, now);
    await s.channelBind(PHONE, direct('carol'), 'bound', now, now + DAY, now);
    await s.channelBind(PHONE, direct('carol'), 'unbound', now + 1, now + DAY, now);
    const r = await s.channelSignal(PHONE, [swap('s', now, now + HOUR)], now, FAN);
    assert.deepEqual(r.members, [{ ...via, opMs: now }]);
    assert.deepEqual(parseMember(memberField(via)), via);
    assert.deepEqual(parseMember(memberField(direct('=odd=id'))), direct('=odd=id'));
  });

  test('an open-ended member keeps the hash; when it becomes finite the hash expires again', async () => {
    const s = store();
    const members = s.keys.channel(PHONE).members;
    await s.channelBind(PHONE, direct('a'), 'bound', now, now + DAY, now);
    await s.channelBind(PHONE, direct('b'), 'touch', now, -1, now);
    assert.equal(await redis.pexpiretime(members), -1);
    await s.channelBind(PHONE, direct('b'), 'touch', now, now + 2 * DAY, now);
    assert.equal(await redis.pexpiretime(members), now + 2 * DAY);
  });
});

describe('meta: fingerprint, epochs, progress', () => {
  test('the first fingerprint wins; epochs only grow; progress clears recovery targets it passes', async () => {
    const keys = keySpace(uniquePrefix());
    const meta = new MetaStore(redis, keys);
    assert.equal(await meta.fingerprint(), null);
    assert.equal(await meta.bumpEpoch(2), null, 'no epoch without a fingerprint');
    const fp = { format: 2, prefix: keys.prefix, secret: 's', policy: 'p', epoch: 1, createdAt: 'now' };
    assert.equal((await meta.initFingerprint(fp)).created, true);
    const second = await meta.initFingerprint({ ...fp, epoch: 9 });
    assert.equal(second.created, false);
    assert.equal(second.fingerprint.epoch, 1);
    assert.equal(await meta.bumpEpoch(0), 2);
    assert.equal(await meta.bumpEpoch(7), 7);
    await meta.markRecovery([{ stage: 'router', topic: 't', partition: 0, offset: '10' }]);
    assert.equal(
      await meta.recordProgress([{ stage: 'router', topic: 't', partition: 0, nextOffset: '9' }], now),
      1,
    );
    assert.equal(
      await meta.recordProgress([{ stage: 'router', topic: 't', partition: 0, nextOffset: '10' }], now),
      0,
    );
    assert.deepEqual(
      (await meta.progress()).map((p) => [p.stage, p.topic, p.partition, p.nextOffset]),
      [['router', 't', 0, '10']],
    );
    assert.equal(await meta.evictionPolicy(), 'noeviction');
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

test('activeSignal: a tombstone and an expired record are not live', () => {
  const base = {
    k: 'k',
    code: 'sim_swap' as const,
    scope: 'phone' as const,
    ref: PHONE,
    sinceMs: now,
    expiresAtMs: now + HOUR,
    raisedMs: now,
    clearedMs: null,
    attributes: {},
    sourceEventIds: [],
    sourceCount: 0,
    raises: [{ sinceMs: now, expiresAtMs: now + HOUR, atMs: now, eventId: 'e', attributes: {} }],
    liftedMs: 0,
  };
  assert.ok(activeSignal(base, now));
  assert.equal(activeSignal({ ...base, raisedMs: null, clearedMs: now }, now), undefined);
  assert.equal(activeSignal(base, now + HOUR), undefined);
});
