import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadPolicyFile } from '@assurance/policy';
import type { Mutation } from '@assurance/redis';
import { signalKey, socKey, socPrefix } from '@assurance/redis';
import { CompromiseSignalEvent, channelRef } from '@assurance/schemas';
import type { DeriveContext } from './derive.ts';
import {
  COMPANION_MARK,
  deriveChannelBinding,
  deriveCompromiseSignal,
  deriveDevice,
  deriveMailboxChange,
  deriveSimSwap,
  RoutingError,
  recordMutations,
} from './derive.ts';

const policy = loadPolicyFile();
const NOW = Date.parse('2026-11-28T10:05:00.000Z');
const ctx: DeriveContext = {
  settings: policy.signals,
  hash: (kind, value) => channelRef('test-secret-0123456789', kind, value),
  trigger: { eventId: 'e1', topic: 't', occurredAt: '2026-11-28T10:00:00.000Z' },
  tenantId: null,
  nowMs: NOW,
};
const env = { eventId: 'e1', occurredAt: '2026-11-28T10:00:00.000Z', source: 'src' };
const AT = Date.parse(env.occurredAt);
const DAY = 86_400_000;
type Raise = Extract<Mutation, { t: 'r' }>;
const raises = (ms: Mutation[]) => ms.filter((m): m is Raise => m.t === 'r');
const mutationsOf = (plan: ReturnType<typeof deriveSimSwap>) =>
  plan.kind === 'channel' || plan.kind === 'identity' || plan.kind === 'binding' ? plan.mutations : [];

describe('deriveSimSwap', () => {
  test('the window runs from swappedAt, not from when we heard of it', () => {
    const plan = deriveSimSwap(
      { ...env, phoneNumber: '+33612345678', swappedAt: '2026-11-20T00:00:00.000Z', changeType: 'port_out' },
      ctx,
    );
    assert.equal(plan.kind, 'channel');
    const [m] = raises(mutationsOf(plan));
    assert.equal(m?.exp, Date.parse('2026-11-20T00:00:00.000Z') + 14 * DAY);
    assert.equal(m?.since, Date.parse('2026-11-20T00:00:00.000Z'));
    assert.equal(m?.code, 'sim_swap');
    // One record per phone, whatever the source or event id: a replay merges into it.
    assert.equal(m?.k, signalKey('sim_swap', 'phone', ctx.hash('phone', '+33612345678')));
  });
});

describe('deriveMailboxChange', () => {
  test('an external forwarding rule counts; an internal one does not; unknown counts (fail closed)', () => {
    const base = { ...env, mailbox: 'a@example.org', change: 'forwarding_rule_added' as const };
    assert.equal(deriveMailboxChange({ ...base, external: true }, ctx).kind, 'channel');
    assert.equal(deriveMailboxChange({ ...base, external: false }, ctx).kind, 'none');
    assert.equal(deriveMailboxChange(base, ctx).kind, 'channel');
  });
  test('a routine password change is not tampering', () => {
    assert.equal(
      deriveMailboxChange({ ...env, mailbox: 'a@example.org', change: 'password_changed' }, ctx).kind,
      'none',
    );
  });
});

describe('deriveChannelBinding', () => {
  test('an unbind is one dated op; what it drops is decided where it is applied', () => {
    const plan = deriveChannelBinding(
      {
        ...env,
        identityId: 'u',
        op: 'unbound',
        channel: { type: 'phone', value: '+33612345678' },
        uses: { authenticators: [], recovery: [] },
      },
      ctx,
    );
    assert.equal(plan.kind, 'binding');
    assert.deepEqual(
      mutationsOf(plan).map((m) => [m.t, 'at' in m ? m.at : null]),
      [['u', AT]],
    );
  });
  test('channel values never leave as themselves: bindings carry hashed refs only, routes included', () => {
    const plan = deriveChannelBinding(
      {
        ...env,
        identityId: 'u',
        op: 'bound',
        channel: { type: 'sync_account', value: 'keychain:u' },
        uses: { authenticators: ['passkey_synced'], recovery: [] },
        recoverableVia: [{ type: 'email', value: 'u@example.org' }],
      },
      ctx,
    );
    assert.ok(!JSON.stringify(plan).includes('u@example.org'));
    assert.ok(plan.kind === 'binding');
    if (plan.kind !== 'binding') return;
    const email = ctx.hash('email', 'u@example.org');
    assert.deepEqual(plan.routes, [email]);
    const [b] = plan.mutations;
    assert.ok(b?.t === 'b');
    if (b?.t === 'b') assert.deepEqual(b.via, [`email:${email}`]);
  });
});

describe('deriveDevice', () => {
  test('enrolment binds the device and raises device_new for 72 hours', () => {
    const plan = deriveDevice(
      { ...env, identityId: 'u', deviceId: 'd1', change: 'enrolled', authenticators: ['push'] },
      ctx,
    );
    assert.equal(plan.kind, 'binding');
    assert.deepEqual(
      mutationsOf(plan).map((m) => m.t),
      ['b', 'r'],
    );
    const [m] = raises(mutationsOf(plan));
    assert.equal(m && m.exp - m.since, 72 * 3_600_000);
  });
  test('a lost device is compromised, on the identity that reported it (it does not bind it)', () => {
    const plan = deriveDevice({ ...env, identityId: 'u', deviceId: 'd1', change: 'lost' }, ctx);
    assert.equal(plan.kind, 'identity');
    assert.ok(raises(mutationsOf(plan)).some((m) => m.code === 'device_compromised'));
  });
});

describe('deriveCompromiseSignal', () => {
  const raise = { ...env, signalId: 's1', op: 'raise' as const, severity: 'high' as const, raisedBy: 'soc' };
  const clear = { ...env, signalId: 's1', op: 'clear' as const, raisedBy: 'soc' };
  test('a takeover on an identity lasts until cleared', () => {
    const plan = deriveCompromiseSignal(
      { ...raise, subject: { type: 'identity', value: 'u' }, kind: 'account_takeover' },
      ctx,
    );
    assert.ok(plan.kind === 'identity');
    const [m] = raises(mutationsOf(plan));
    assert.ok(m?.code === 'takeover_confirmed' && m.exp === -1);
  });
  test('one incident id on two subjects, or as two kinds, is two signals; a clear lifts only what it names', () => {
    const phone = ctx.hash('phone', '+33612345678');
    const onIdentity = raises(
      mutationsOf(
        deriveCompromiseSignal(
          { ...raise, subject: { type: 'identity', value: 'u' }, kind: 'account_takeover' },
          ctx,
        ),
      ),
    )[0];
    const onPhone = raises(
      mutationsOf(
        deriveCompromiseSignal(
          { ...raise, subject: { type: 'phone', value: '+33612345678' }, kind: 'sim_swap' },
          ctx,
        ),
      ),
    )[0];
    assert.equal(onIdentity?.k, socKey('identity', null, 's1', 'account_takeover'));
    assert.equal(onPhone?.k, socKey('phone', phone, 's1', 'sim_swap'));
    assert.notEqual(onIdentity?.k, onPhone?.k);
    const phoneClear = deriveCompromiseSignal(
      { ...clear, subject: { type: 'phone', value: '+33612345678' }, kind: 'sim_swap' },
      ctx,
    );
    assert.ok(phoneClear.kind === 'channel');
    const [c] = mutationsOf(phoneClear);
    assert.ok(c?.t === 'c' && c.k === onPhone?.k);
  });
  test('a clear naming no kind clears every kind of that id on that subject, and blocks their late raises', () => {
    const plan = deriveCompromiseSignal({ ...clear, subject: { type: 'identity', value: 'u' } }, ctx);
    const [c] = mutationsOf(plan);
    assert.ok(c?.t === 'cp');
    if (c?.t !== 'cp') return;
    assert.equal(c.p, socPrefix('identity', null, 's1'));
    const r = raises(
      mutationsOf(
        deriveCompromiseSignal(
          { ...raise, subject: { type: 'identity', value: 'u' }, kind: 'account_takeover' },
          ctx,
        ),
      ),
    )[0];
    assert.equal(r?.pk, `${c.p}*`);
  });
  test('a SIM swap or mailbox compromise on an identity (no channel named) is also that channel signal, identity-wide; a clear lifts both', () => {
    for (const [kind, companion] of [
      ['sim_swap', 'sim_swap'],
      ['mailbox_compromise', 'mailbox_tampered'],
    ] as const) {
      const subject = { type: 'identity' as const, value: 'u' };
      const r = raises(mutationsOf(deriveCompromiseSignal({ ...raise, subject, kind }, ctx)));
      assert.deepEqual(
        r.map((m) => [m.code, m.scope, m.ref, m.k]),
        [
          ['credential_compromised', 'identity', null, socKey('identity', null, 's1', kind)],
          [companion, 'identity', null, `${socKey('identity', null, 's1', kind)}${COMPANION_MARK}`],
        ],
      );
      assert.equal(r[0]?.exp, r[1]?.exp);
      assert.equal(r[1]?.pk, r[0]?.pk, 'a clear naming no kind blocks its late raise too');
      const cleared = mutationsOf(deriveCompromiseSignal({ ...clear, subject, kind }, ctx)).filter(
        (m) => m.t === 'c' && m.code !== 'signal_unreadable',
      );
      assert.deepEqual(
        cleared.map((m) => (m.t === 'c' ? m.k : '')),
        r.map((m) => m.k),
      );
    }
    // Named on the phone itself, it is the phone's signal alone.
    const onPhone = raises(
      mutationsOf(
        deriveCompromiseSignal(
          { ...raise, subject: { type: 'phone', value: '+33612345678' }, kind: 'sim_swap' },
          ctx,
        ),
      ),
    );
    assert.equal(onPhone.length, 1);
  });
  test('a valid SOC word lifts an unreadable mark from before it, dated by the event, not our clock', () => {
    const plan = deriveCompromiseSignal({ ...clear, subject: { type: 'identity', value: 'u' } }, ctx);
    const unpoison = mutationsOf(plan).find((m) => m.t === 'c' && m.code === 'signal_unreadable');
    assert.ok(unpoison?.t === 'c' && unpoison.at === AT);
  });
  test('a token subject routes to the identity it names, in either form; an ambiguous one is refused', () => {
    const parse = (subject: unknown) =>
      CompromiseSignalEvent.parse({ ...raise, kind: 'token_theft', subject });
    const legacy = deriveCompromiseSignal(parse({ type: 'token', value: 'u-9/tok' }), ctx);
    assert.ok(legacy.kind === 'identity' && legacy.identityId === 'u-9');
    const explicit = deriveCompromiseSignal(
      parse({ type: 'token', value: 'key/1', identityId: 'org/alice' }),
      ctx,
    );
    assert.ok(explicit.kind === 'identity' && explicit.identityId === 'org/alice');
    // Two ways of naming the same credential give the same signal; different ones never collide.
    const same = deriveCompromiseSignal(parse({ type: 'token', value: 'tok', identityId: 'u-9' }), ctx);
    assert.equal(raises(mutationsOf(same))[0]?.ref, raises(mutationsOf(legacy))[0]?.ref);
    assert.notEqual(raises(mutationsOf(explicit))[0]?.ref, raises(mutationsOf(legacy))[0]?.ref);
    assert.throws(() => parse({ type: 'token', value: 'org/alice/key-1' }), /ambiguous/);
    assert.throws(() => parse({ type: 'token', value: 'tok' }), /must name its identity/);
    assert.throws(() => parse({ type: 'phone', value: '+33612345678', identityId: 'u' }), /only allowed/);
    assert.throws(
      () =>
        deriveCompromiseSignal(
          { ...raise, subject: { type: 'token', value: 'tok' }, kind: 'token_theft' },
          ctx,
        ),
      RoutingError,
    );
  });
});

describe('recordMutations', () => {
  test('a channel hands its records on whole: standing raises, the latest clear and what it lifted', () => {
    const phone = ctx.hash('phone', '+33612345678');
    const raises = [
      { sinceMs: AT, expiresAtMs: AT + DAY, atMs: AT, eventId: 'a', attributes: { changeType: 'port_out' } },
      { sinceMs: AT, expiresAtMs: AT + DAY, atMs: AT + 5, eventId: null, attributes: {} },
    ];
    const out = recordMutations([
      {
        k: signalKey('sim_swap', 'phone', phone),
        code: 'sim_swap',
        scope: 'phone',
        ref: phone,
        raises,
        clearedMs: AT - 1,
        liftedMs: AT + 2 * DAY,
        attributes: { changeType: 'port_out' },
        sinceMs: AT,
        expiresAtMs: AT + DAY,
        raisedMs: AT + 5,
        sourceEventIds: ['a'],
        sourceCount: 1,
      },
    ]);
    assert.deepEqual(out, [
      {
        t: 'm',
        k: signalKey('sim_swap', 'phone', phone),
        code: 'sim_swap',
        scope: 'phone',
        ref: phone,
        cl: AT - 1,
        lf: AT + 2 * DAY,
        rs: [
          [AT, AT + DAY, AT, 'a', { changeType: 'port_out' }],
          [AT, AT + DAY, AT + 5, false, {}],
        ],
      },
    ]);
  });
});
