import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompromiseSignalEvent } from '@assurance/schemas';
import { EVENT_TYPES } from './events.ts';
import { DEFAULT_MAPPING, mapEvent } from './mapping.ts';
import type { VerifiedSet } from './verify.ts';

const ISSUED = Date.UTC(2026, 10, 29, 12, 0, 0);
const set = (eventType: string, event: Record<string, unknown>, jti = 'jti-1'): VerifiedSet => ({
  jti,
  iss: 'https://idp.example.com',
  issuedAt: ISSUED,
  txn: undefined,
  eventType,
  event,
  subject: undefined,
});
const idp = { name: 'idp', mayClear: false };
const phone = { type: 'phone', value: '+4915112345678' } as const;
const user = { type: 'identity', value: 'user-1' } as const;

test('RISC credential-compromise of phone-sms: a SIM-swap signal on the phone, valid by the contract', () => {
  const m = mapEvent(set(EVENT_TYPES.credentialCompromise, { credential_type: 'phone-sms' }), phone, idp);
  assert.equal(m.kind, 'signal');
  if (m.kind !== 'signal') return;
  const e = CompromiseSignalEvent.parse(m.event);
  assert.equal(e.op, 'raise');
  if (e.op !== 'raise') return;
  assert.equal(e.kind, 'sim_swap');
  assert.equal(e.severity, 'high');
  assert.equal(e.eventId, 'ssf.idp.jti-1');
  assert.equal(e.source, 'ssf:idp');
  assert.equal(e.raisedBy, 'ssf:idp');
  assert.equal(e.occurredAt, new Date(ISSUED).toISOString());
  assert.equal(e.expiresAt, new Date(ISSUED + 30 * 86_400_000).toISOString());
  assert.match(e.reference ?? '', /jti-1.*credentialCompromise/);
});

test('the event’s own timestamp orders it, not when it arrived', () => {
  const at = Math.floor(ISSUED / 1000) - 3600;
  const m = mapEvent(set(EVENT_TYPES.credentialChange, { event_timestamp: at }), user, idp);
  assert.equal(m.kind === 'signal' && m.event.occurredAt, new Date(at * 1000).toISOString());
});

test('a SET delivered twice maps to the same event id (the engine applies it once)', () => {
  const a = mapEvent(set(EVENT_TYPES.recoveryActivated, {}), user, idp);
  const b = mapEvent(set(EVENT_TYPES.recoveryActivated, {}), user, idp);
  assert.deepEqual(a, b);
});

test('state events share one signal per subject; a relaxing event clears it only when the transmitter may clear', () => {
  const high = mapEvent(set(EVENT_TYPES.riskLevelChange, { current_level: 'HIGH' }, 'a'), user, idp);
  const medium = mapEvent(set(EVENT_TYPES.riskLevelChange, { current_level: 'medium' }, 'b'), user, idp);
  assert.ok(high.kind === 'signal' && medium.kind === 'signal');
  if (high.kind !== 'signal' || medium.kind !== 'signal') return;
  assert.equal(high.event.signalId, medium.event.signalId);
  const low = set(EVENT_TYPES.riskLevelChange, { current_level: 'low' }, 'c');
  assert.deepEqual(mapEvent(low, user, idp), { kind: 'ignored', why: 'clear_not_trusted' });
  const cleared = mapEvent(low, user, { name: 'idp', mayClear: true });
  assert.ok(cleared.kind === 'signal' && cleared.event.op === 'clear');
  assert.equal(cleared.kind === 'signal' && cleared.event.signalId, high.event.signalId);
});

test('unknown types, types without a rule and subjects of no one are acknowledged and ignored', () => {
  assert.deepEqual(mapEvent(set('https://example.com/event/other', {}), user, idp), {
    kind: 'ignored',
    why: 'unknown_type',
  });
  assert.deepEqual(mapEvent(set(EVENT_TYPES.sessionRevoked, {}), user, idp), {
    kind: 'ignored',
    why: 'no_rule',
  });
  assert.deepEqual(mapEvent(set(EVENT_TYPES.accountDisabled, { reason: 'bulk-account' }), user, idp), {
    kind: 'ignored',
    why: 'no_rule',
  });
  assert.deepEqual(mapEvent(set(EVENT_TYPES.recoveryActivated, {}), undefined, idp), {
    kind: 'ignored',
    why: 'no_subject',
  });
});

test('every raise of the default table is a valid contract event on every kind of subject', () => {
  for (const rule of DEFAULT_MAPPING) {
    const event = rule.when ? { [rule.when.field]: rule.when.in[0] } : {};
    for (const subject of [user, phone, { type: 'email', value: 'a@example.com' } as const])
      for (const mayClear of [false, true]) {
        const m = mapEvent(set(EVENT_TYPES[rule.event], event, 'x'.repeat(300)), subject, {
          name: 'idp',
          mayClear,
        });
        if (m.kind === 'signal') CompromiseSignalEvent.parse(m.event);
      }
  }
});
