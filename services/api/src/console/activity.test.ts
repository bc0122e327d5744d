import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InboundMessage } from '@assurance/kafka';
import { DLQ_HEADERS } from '@assurance/schemas';
import { ActivityView, type TimelineEntry } from './activity.ts';

const NOW = Date.parse('2026-11-29T12:00:30Z');
let offset = 0;

function tiers(outcome: string, high = outcome) {
  return {
    low: { outcome },
    medium: { outcome },
    high: { outcome: high },
    critical: { outcome: high },
  };
}

/** An audit record as the engine writes it: format 2 (`afterV2`) unless `v1`. */
function audit(
  identityId: string,
  sequence: number,
  o: { outcome?: string; risk?: string; signals?: string[]; at?: number; v1?: boolean; tenant?: string } = {},
): InboundMessage {
  const decision = {
    riskLevel: o.risk ?? 'low',
    tiers: tiers(o.outcome ?? 'step_up'),
    signals: (o.signals ?? []).map((code) => ({ code })),
  };
  const record = {
    identityId,
    tenantId: o.tenant ?? null,
    sequence,
    previous: null,
    [o.v1 ? 'after' : 'afterV2']: decision,
    reasons: [{ code: 'sim_swap.phone_bound', admin: 'SIM swap on a bound phone', user: '…' }],
    trigger: {
      eventId: `e-${sequence}`,
      topic: 'identity.sim-swap.v1',
      occurredAt: new Date(NOW).toISOString(),
    },
    policyVersion: '1.1.0',
    policyDigest: 'd',
    recordedAt: new Date(o.at ?? NOW).toISOString(),
  };
  return message(JSON.stringify(record), {}, o.at ?? NOW);
}

function message(value: string | null, headers: Record<string, string>, at = NOW): InboundMessage {
  return {
    topic: 't',
    partition: 0,
    offset: String(offset++),
    key: null,
    value: value === null ? null : Buffer.from(value),
    headers,
    timestampMs: at,
  };
}

const view = (o: Partial<ConstructorParameters<typeof ActivityView>[0]> = {}) =>
  new ActivityView({ lookback: 0, identities: 100, clock: () => NOW, ...o });

test('a timeline is newest first, reads both decision formats, and keeps a decision seen twice once', () => {
  const v = view();
  v.addAudit([audit('a', 10, { v1: true }), audit('a', 12, { signals: ['sim_swap', 'sim_swap'] })]);
  v.addAudit([audit('a', 12), audit('a', 11)]);
  const t = v.timeline('a');
  assert.deepEqual(
    t.map((e) => e.sequence),
    [12, 11, 10],
  );
  assert.deepEqual(t[0]?.signals, ['sim_swap']);
  assert.equal(t[0]?.outcomes.medium, 'step_up');
  assert.equal(t[0]?.trigger.eventId, 'e-12');
  assert.deepEqual(v.timeline('nobody'), []);
});

test('bounded: the last entries of each identity, and the identities decided most recently', () => {
  const v = view({ identities: 2, perIdentity: 3 });
  v.addAudit([1, 2, 3, 4, 5].map((n) => audit('a', n)));
  assert.deepEqual(
    v.timeline('a').map((e) => e.sequence),
    [5, 4, 3],
  );
  v.addAudit([audit('b', 1), audit('a', 6), audit('c', 1)]);
  // b was written least recently: it goes first.
  assert.equal(v.identities, 2);
  assert.deepEqual(v.timeline('b'), []);
  assert.equal(v.timeline('a').length, 3);
  assert.equal(v.timeline('c').length, 1);
});

test('records it cannot read are counted, never thrown on', () => {
  const v = view();
  v.addAudit([message('{not json', {}), message(null, {}), message(JSON.stringify({ identityId: 'x' }), {})]);
  assert.equal(v.unreadable, 3);
  assert.equal(v.identities, 0);
});

test('per minute: decisions by risk and tier outcome, dead letters by class, only within the window', () => {
  const v = view({ minutes: 10 });
  v.addAudit([
    audit('a', 1, { risk: 'high', outcome: 'hold' }),
    audit('b', 1, { risk: 'low', outcome: 'allow', at: NOW - 60_000 }),
    // Older than the window: in the timeline, not in the counts.
    audit('c', 1, { risk: 'critical', outcome: 'deny', at: NOW - 3_600_000 }),
  ]);
  v.addDeadLetters([
    message('x', { [DLQ_HEADERS.errorClass]: 'malformed_json' }),
    message('x', { [DLQ_HEADERS.errorClass]: 'malformed_json' }),
    message('x', {}),
  ]);
  const minutes = v.minutes();
  assert.equal(minutes.length, 10);
  const last = minutes.at(-1);
  const before = minutes.at(-2);
  assert.deepEqual(last?.risk, { high: 1 });
  assert.deepEqual(last?.outcomes.medium, { hold: 1 });
  assert.deepEqual(last?.deadLetters, { malformed_json: 2, unknown: 1 });
  assert.deepEqual(before?.risk, { low: 1 });
  assert.equal(
    minutes.reduce((n, m) => n + m.decisions, 0),
    2,
  );
  assert.equal(v.timeline('c').length, 1);
  assert.equal(v.oldest, NOW - 3_600_000);
});

test('followers get each new entry of their identity only, until they stop following', () => {
  const v = view();
  const got: TimelineEntry[] = [];
  const stop = v.follow('a', (e) => got.push(e));
  v.addAudit([audit('a', 1), audit('b', 1), audit('a', 1), audit('a', 2)]);
  stop();
  v.addAudit([audit('a', 3)]);
  assert.deepEqual(
    got.map((e) => e.sequence),
    [1, 2],
  );
});
