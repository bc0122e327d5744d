import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Decision } from '@assurance/schemas';
import { createLocalJWKSet } from 'jose';
import { EVENT_TYPES } from './events.ts';
import { eventsFor, generateSsfKey, jtiOf, SetSigner, sentStateOf } from './transmit.ts';
import { SetVerifier } from './verify.ts';

const decision = (
  sequence: number,
  riskLevel: string,
  signals: Array<{ code: string; scope: string }>,
): Decision =>
  ({
    identityId: 'user-1',
    sequence,
    riskLevel,
    computedAt: '2026-11-29T12:00:00.000Z',
    signals: signals.map((s) => ({
      ...s,
      ref: null,
      since: '2026-11-29T11:00:00.000Z',
      expiresAt: null,
      sourceEventIds: [],
      attributes: {},
    })),
  }) as unknown as Decision;

test('a SIM swap: risk up and a phone-sms credential compromise; nothing again for the next decision alike', () => {
  const swapped = decision(2, 'elevated', [{ code: 'sim_swap', scope: 'phone' }]);
  const first = eventsFor(undefined, swapped);
  assert.deepEqual(
    first.map((e) => [e.type, e.event.current_level ?? e.event.credential_type]),
    [
      [EVENT_TYPES.riskLevelChange, 'MEDIUM'],
      [EVENT_TYPES.credentialCompromise, 'phone-sms'],
    ],
  );
  assert.equal(first[0]?.event.previous_level, 'LOW');
  assert.equal(first[0]?.event.risk_reason, 'SIM_SWAP');
  assert.deepEqual(
    eventsFor(sentStateOf(swapped), decision(3, 'elevated', [{ code: 'sim_swap', scope: 'phone' }])),
    [],
  );
});

test('an older or repeated decision sends nothing; a cleared one lowers the risk again', () => {
  const sent = sentStateOf(decision(5, 'high', [{ code: 'channel_compromised', scope: 'email' }]));
  assert.equal(sent.mailbox, true);
  assert.deepEqual(eventsFor(sent, decision(4, 'low', [])), []);
  assert.deepEqual(eventsFor(sent, decision(5, 'low', [])), []);
  const lowered = eventsFor(sent, decision(6, 'low', []));
  assert.deepEqual(
    lowered.map((e) => [e.event.previous_level, e.event.current_level]),
    [['HIGH', 'LOW']],
  );
});

test('jti is the same for the same stream, decision and event, and differs otherwise', () => {
  assert.equal(jtiOf('s', 'u', 1, 't'), jtiOf('s', 'u', 1, 't'));
  assert.notEqual(jtiOf('s', 'u', 1, 't'), jtiOf('s', 'u', 2, 't'));
  assert.notEqual(jtiOf('s', 'u', 1, 't'), jtiOf('s2', 'u', 1, 't'));
});

test('what the signer signs, our own verifier accepts with the keys it publishes; a rotation keeps both published', async () => {
  const [a, b] = [await generateSsfKey(), await generateSsfKey()];
  const signer = new SetSigner('https://tx.example', JSON.stringify([b, a]));
  const jwks = signer.jwks();
  assert.deepEqual(
    jwks.keys.map((k) => k.kid),
    [b.kid, a.kid],
  );
  for (const k of jwks.keys)
    assert.equal((k as Record<string, unknown>).d, undefined, 'no private part published');
  const token = await signer.sign({
    audience: 'https://rx.example',
    jti: 'j1',
    txn: '7',
    subject: { format: 'iss_sub', iss: 'https://tx.example', sub: 'user-1' },
    event: { type: EVENT_TYPES.riskLevelChange, event: { current_level: 'HIGH' } },
  });
  const v = new SetVerifier({
    issuer: 'https://tx.example',
    audience: 'https://rx.example',
    algorithms: ['RS256'],
    keys: createLocalJWKSet(jwks),
  });
  const set = await v.verify(token);
  assert.equal(set.txn, '7');
  assert.equal(set.eventType, EVENT_TYPES.riskLevelChange);
  assert.throws(() => new SetSigner('https://tx.example', '[{"kty":"oct","k":"x"}]'), /SSF_SIGNING_KEYS/);
  assert.throws(() => new SetSigner('https://tx.example', JSON.stringify([a, a])), /share a kid/);
});
