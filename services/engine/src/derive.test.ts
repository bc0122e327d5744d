import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadPolicyFile } from '@assurance/policy';
import type { Mutation } from '@assurance/redis';
import { channelRef } from '@assurance/redis';
import type { DeriveContext } from './derive.ts';
import {
  credentialOwner,
  deriveChannelBinding,
  deriveCompromiseSignal,
  deriveDevice,
  deriveMailboxChange,
  deriveSimSwap,
  RoutingError,
} from './derive.ts';

const policy = loadPolicyFile();
const ctx: DeriveContext = {
  settings: policy.signals,
  hash: (kind, value) => channelRef('test-secret-0123456789', kind, value),
  trigger: { eventId: 'e1', topic: 't', occurredAt: '2026-11-28T10:00:00.000Z' },
  eventKey: 'src|e1',
  tenantId: null,
};
const env = { eventId: 'e1', occurredAt: '2026-11-28T10:00:00.000Z', source: 'src' };
const DAY = 86_400_000;
const upserts = (ms: Mutation[]) => ms.filter((m) => m.t === 'upsert_signal');

describe('deriveSimSwap', () => {
  test('the window runs from swappedAt, not from when we heard of it', () => {
    const plan = deriveSimSwap(
      { ...env, phoneNumber: '+33612345678', swappedAt: '2026-11-20T00:00:00.000Z', changeType: 'port_out' },
      ctx,
    );
    assert.equal(plan.kind, 'channel');
    if (plan.kind !== 'channel') return;
    const [m] = upserts(plan.mutations);
    assert.equal(
      m?.t === 'upsert_signal' && m.expiresAtMs,
      Date.parse('2026-11-20T00:00:00.000Z') + 14 * DAY,
    );
    assert.equal(m?.t === 'upsert_signal' && m.code, 'sim_swap');
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
  test("unbinding also drops the channel's signals from the identity", () => {
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
    if (plan.kind === 'binding')
      assert.deepEqual(
        plan.mutations.map((m) => m.t),
        ['unbind', 'clear_ref'],
      );
  });
  test('channel values never leave as themselves: bindings carry hashed refs only', () => {
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
  });
});

describe('deriveDevice', () => {
  test('enrolment binds the device and raises device_new for 72 hours', () => {
    const plan = deriveDevice(
      { ...env, identityId: 'u', deviceId: 'd1', change: 'enrolled', authenticators: ['push'] },
      ctx,
    );
    assert.equal(plan.kind, 'binding');
    if (plan.kind !== 'binding') return;
    assert.deepEqual(
      plan.mutations.map((m) => m.t),
      ['bind', 'upsert_signal'],
    );
    const m = plan.mutations[1];
    assert.equal(m?.t === 'upsert_signal' && m.expiresAtMs - m.sinceMs, 72 * 3_600_000);
  });
  test('a lost device is compromised', () => {
    const plan = deriveDevice({ ...env, identityId: 'u', deviceId: 'd1', change: 'lost' }, ctx);
    assert.ok(
      plan.kind === 'binding' &&
        upserts(plan.mutations).some((m) => m.t === 'upsert_signal' && m.code === 'device_compromised'),
    );
  });
});

describe('deriveCompromiseSignal', () => {
  const raise = { ...env, signalId: 's1', op: 'raise' as const, severity: 'high' as const, raisedBy: 'soc' };
  test('a takeover on an identity lasts until cleared', () => {
    const plan = deriveCompromiseSignal(
      { ...raise, subject: { type: 'identity', value: 'u' }, kind: 'account_takeover' },
      ctx,
    );
    assert.ok(plan.kind === 'identity');
    const [m] = plan.kind === 'identity' ? plan.mutations : [];
    assert.ok(m?.t === 'upsert_signal' && m.code === 'takeover_confirmed' && m.expiresAtMs === -1);
  });
  test('a signal on a phone is a channel signal keyed by its signal id, so a clear finds it', () => {
    const plan = deriveCompromiseSignal(
      { ...raise, subject: { type: 'phone', value: '+33612345678' }, kind: 'sim_swap' },
      ctx,
    );
    assert.ok(
      plan.kind === 'channel' && plan.mutations[0]?.t === 'upsert_signal' && plan.mutations[0].k === 'soc|s1',
    );
  });
  test('a token subject routes to the identity it names', () => {
    const plan = deriveCompromiseSignal(
      { ...raise, subject: { type: 'token', value: 'u-9/tok' }, kind: 'token_theft' },
      ctx,
    );
    assert.ok(plan.kind === 'identity' && plan.identityId === 'u-9');
    assert.equal(credentialOwner('no-owner'), undefined);
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
