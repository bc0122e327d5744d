import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RoutedInfo } from '@assurance/engine';
import { DLQ_HEADERS, INPUT_TOPICS, loadFixtures, validateEvent } from '@assurance/schemas';
import { envelope, startPipeline } from '../src/pipeline.ts';
import { collectEvents } from '../src/wait.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
before(async () => {
  p = await startPipeline();
});
after(() => p.stop());

function validNow(topic: string, bytes: Buffer): boolean {
  try {
    validateEvent(topic as never, JSON.parse(bytes.toString('utf8')));
    return true;
  } catch {
    return false;
  }
}

/** Namespaced name of a v1 input topic. */
const ns = (topic: string) => `${p.config.TOPIC_NAMESPACE}.${topic}`;

/** Resolves once `n` more input messages are durably handled, with their outcomes. */
function routed(n: number, timeoutMs = 30_000): Promise<RoutedInfo[]> {
  return collectEvents<RoutedInfo>(p.engine.events, 'routed', n, timeoutMs);
}

describe('every input topic in both encodings', () => {
  const fixtures = loadFixtures().filter((f) => (INPUT_TOPICS as readonly string[]).includes(f.topic));

  test('all six input topics have fixtures', () => {
    assert.deepEqual(new Set(fixtures.map((f) => f.topic)), new Set(INPUT_TOPICS));
  });

  for (const encoding of ['json', 'avro'] as const) {
    test(`valid fixtures as ${encoding} are decoded and routed, none dead-lettered`, async () => {
      const sends: Array<() => Promise<void>> = [];
      for (const f of fixtures) {
        for (const v of f.valid) {
          const value = JSON.parse(v.bytes.toString('utf8')) as Record<string, unknown>;
          // A fresh event id per run and encoding: the dedupe window would otherwise swallow repeats.
          value.eventId = `${String(value.eventId)}-${encoding}-${Date.now()}`;
          sends.push(() => p.producer.send(ns(f.topic), v.key, value, encoding));
        }
      }
      const done = routed(sends.length);
      for (const send of sends) await send();
      const outcomes = await done;
      const dead = outcomes.filter((o) => o.result !== 'ok');
      assert.deepEqual(dead, [], `dead-lettered: ${JSON.stringify(dead)}`);
    });
  }
});

describe('dead letters', () => {
  test('every invalid fixture goes to the DLQ with the reason in its headers, and good events still flow', async () => {
    const fixtures = loadFixtures().filter((f) => (INPUT_TOPICS as readonly string[]).includes(f.topic));
    const bad: Array<{ topic: string; key: string; bytes: Buffer; code: string }> = [];
    for (const f of fixtures) {
      f.invalid.forEach((inv, i) => {
        // Fixtures judged against their recorded `now` (e.g. "too far in the future") may be valid
        // today; replay only those that are invalid at any time.
        if (inv.code === 'validation_failed' && validNow(f.topic, inv.bytes)) return;
        bad.push({
          topic: ns(f.topic),
          key: `bad-${f.topic}-${i}-${Date.now()}`,
          bytes: inv.bytes,
          code: inv.code,
        });
      });
    }
    assert.ok(bad.length >= 40, `only ${bad.length} replayable invalid fixtures`);
    const done = routed(bad.length + 1);
    for (const b of bad) await p.producer.sendRaw(b.topic, b.key, b.bytes);
    // A good event after all the bad ones must not be skipped.
    const identityId = `after-poison-${Date.now()}`;
    await p.producer.send(p.topics.login, identityId, {
      ...envelope(),
      identityId,
      outcome: 'success',
      authenticator: 'passkey_device_bound',
    });
    const outcomes = await done;
    assert.equal(outcomes.filter((o) => o.result === 'dead_letter').length, bad.length);
    await p.watcher.waitFor(identityId, () => true);

    for (const b of bad) {
      const m = await p.dlq.waitFor((x) => x.key?.toString() === b.key);
      assert.deepEqual(m.value, b.bytes, 'original bytes kept');
      assert.equal(
        m.headers[DLQ_HEADERS.errorClass],
        b.code,
        `${b.key}: ${m.headers[DLQ_HEADERS.errorMessage]}`,
      );
      assert.ok(m.headers[DLQ_HEADERS.errorMessage]);
      assert.equal(m.headers[DLQ_HEADERS.sourceTopic], b.topic);
      assert.match(m.headers[DLQ_HEADERS.sourcePartition] ?? '', /^\d+$/);
      assert.match(m.headers[DLQ_HEADERS.sourceOffset] ?? '', /^\d+$/);
      assert.ok(!Number.isNaN(Date.parse(m.headers[DLQ_HEADERS.sourceTimestamp] ?? '')));
    }
  });

  const wire = (id: number, payload: Buffer): Buffer => {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(id, 1);
    return Buffer.concat([header, payload]);
  };
  const cases: Array<{ name: string; bytes: () => Promise<Buffer> | Buffer; code: string }> = [
    {
      name: 'oversized',
      bytes: () => Buffer.from(JSON.stringify({ pad: 'x'.repeat(70_000) })),
      code: 'message_too_large',
    },
    { name: 'empty', bytes: () => Buffer.alloc(0), code: 'empty_message' },
    { name: 'binary garbage', bytes: () => Buffer.from([0xff, 0xfe, 0x01, 0x02]), code: 'unknown_encoding' },
    { name: 'broken JSON', bytes: () => Buffer.from('{"eventId": '), code: 'invalid_json' },
    {
      name: 'unknown schema id',
      bytes: () => wire(987_654, Buffer.from([2, 0x41])),
      code: 'unknown_schema_id',
    },
    {
      name: 'truncated Avro',
      bytes: async () => {
        const full = await p.producer.codec.encode(`${p.topics.simSwap}-value`, {
          eventId: 'e',
          occurredAt: new Date().toISOString(),
          source: 's',
          phoneNumber: '+33612345678',
          swappedAt: new Date().toISOString(),
          changeType: 'sim_change',
        });
        return full.subarray(0, full.length - 5);
      },
      code: 'invalid_avro',
    },
    {
      name: "another topic's schema",
      bytes: () =>
        p.producer.codec.encode(`${p.topics.login}-value`, {
          ...envelope(),
          identityId: 'x',
          outcome: 'success',
          authenticator: 'totp',
        }),
      // Its writer schema cannot be resolved to the SIM-swap schema (schema resolution, not zod).
      code: 'invalid_avro',
    },
  ];
  for (const c of cases) {
    test(`${c.name} on the SIM-swap topic → ${c.code}`, async () => {
      const key = `case-${c.name}-${Date.now()}`;
      const done = routed(1);
      await p.producer.sendRaw(p.topics.simSwap, key, await c.bytes());
      assert.equal((await done)[0]?.error, c.code);
      const m = await p.dlq.waitFor((x) => x.key?.toString() === key);
      assert.equal(m.headers[DLQ_HEADERS.errorClass], c.code);
    });
  }

  test('a key that does not match the identity is dead-lettered', async () => {
    const done = routed(1);
    await p.producer.send(p.topics.login, 'someone-else', {
      ...envelope(),
      identityId: 'me',
      outcome: 'success',
      authenticator: 'totp',
    });
    assert.equal((await done)[0]?.error, 'key_mismatch');
  });
});

describe('poisoned compromise signals fail closed', () => {
  test('an unreadable SOC signal keyed by an identity holds critical actions until a valid word arrives', async () => {
    const identityId = `soc-poison-${Date.now()}`;
    await p.producer.sendRaw(
      p.topics.compromiseSignal,
      `identity:${identityId}`,
      Buffer.from('{"op": "raise", "kind": '),
    );
    const poisoned = await p.watcher.waitFor(identityId, (d) =>
      d.signals.some((s) => s.code === 'signal_unreadable'),
    );
    assert.equal(poisoned.tiers.critical.outcome, 'hold');
    await p.producer.send(p.topics.compromiseSignal, `identity:${identityId}`, {
      ...envelope(),
      signalId: `sig-${Date.now()}`,
      op: 'clear',
      subject: { type: 'identity', value: identityId },
      raisedBy: 'soc-analyst-1',
    });
    const cleared = await p.watcher.waitFor(identityId, (d) => d.sequence > poisoned.sequence);
    assert.equal(
      cleared.signals.some((s) => s.code === 'signal_unreadable'),
      false,
    );
  });
});

describe('dedupe, fan-out and late binding', () => {
  const bindPhone = (identityId: string, phone: string, offsetMs = 0) =>
    p.producer.send(p.topics.channelBinding, identityId, {
      ...envelope(offsetMs),
      identityId,
      op: 'bound',
      channel: { type: 'phone', value: phone },
      uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
    });
  const swap = (phone: string, extra: Record<string, unknown> = {}) =>
    p.producer.send(p.topics.simSwap, phone, {
      ...envelope(),
      phoneNumber: phone,
      swappedAt: new Date(Date.now() - 60_000).toISOString(),
      changeType: 'sim_change',
      ...extra,
    });

  test('behaviour 10: a SIM swap reaches every identity bound to the phone, and one that binds it later', async () => {
    const phone = `+3361${String(Date.now()).slice(-7)}`;
    const [a, b, late] = ['a', 'b', 'late'].map((x) => `${x}-${Date.now()}`) as [string, string, string];
    await bindPhone(a, phone, -5000);
    await bindPhone(b, phone, -5000);
    await p.watcher.waitFor(a, (d) => d.bindingsKnown);
    await p.watcher.waitFor(b, (d) => d.bindingsKnown);
    await swap(phone);
    for (const id of [a, b]) {
      const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'sim_swap'));
      assert.ok(d.tiers.medium.excludedAuthenticators.some((e) => e.authenticator === 'sms_otp'));
    }
    await bindPhone(late, phone);
    const d = await p.watcher.waitFor(late, (x) => x.signals.some((s) => s.code === 'sim_swap'));
    assert.ok(d.tiers.medium.excludedAuthenticators.some((e) => e.authenticator === 'sms_otp'));
  });

  test('behaviour 11: the same event twice changes nothing the second time', async () => {
    const identityId = `dup-${Date.now()}`;
    const phone = `+3362${String(Date.now()).slice(-7)}`;
    await bindPhone(identityId, phone);
    const first = await p.watcher.waitFor(identityId, () => true);
    const event = {
      ...envelope(),
      phoneNumber: phone,
      swappedAt: new Date().toISOString(),
      changeType: 'sim_change',
    };
    await p.producer.send(p.topics.simSwap, phone, event);
    const swapped = await p.watcher.waitFor(identityId, (d) => d.signals.some((s) => s.code === 'sim_swap'));
    await p.producer.send(p.topics.simSwap, phone, event, 'avro');
    // A sentinel that does change the decision: if the duplicate had too, it would come first.
    await p.producer.send(p.topics.login, identityId, {
      ...envelope(),
      identityId,
      outcome: 'success',
      authenticator: 'totp',
    });
    await p.producer.send(p.topics.compromiseSignal, `identity:${identityId}`, {
      ...envelope(),
      signalId: `sentinel-${Date.now()}`,
      op: 'raise',
      subject: { type: 'identity', value: identityId },
      kind: 'credential_leak',
      severity: 'medium',
      raisedBy: 'soc',
    });
    const sentinel = await p.watcher.waitFor(identityId, (d) =>
      d.signals.some((s) => s.code === 'credential_compromised'),
    );
    const mine = p.watcher.forIdentity(identityId);
    assert.equal(
      mine[mine.indexOf(swapped) + 1],
      sentinel,
      'nothing published between the swap and the sentinel',
    );
    assert.ok(swapped.sequence > first.sequence);
  });

  test('behaviour 11: an old event arriving late never rolls a decision back', async () => {
    const identityId = `late-${Date.now()}`;
    const signalId = `sig-late-${Date.now()}`;
    const subject = { type: 'identity', value: identityId };
    await p.producer.send(p.topics.compromiseSignal, `identity:${identityId}`, {
      ...envelope(-60_000),
      signalId,
      op: 'raise',
      subject,
      kind: 'account_takeover',
      severity: 'critical',
      raisedBy: 'soc',
    });
    const raised = await p.watcher.waitFor(identityId, (d) =>
      d.signals.some((s) => s.code === 'takeover_confirmed'),
    );
    assert.equal(raised.tiers.critical.outcome, 'deny');
    await p.producer.send(p.topics.compromiseSignal, `identity:${identityId}`, {
      ...envelope(),
      signalId,
      op: 'clear',
      subject,
      raisedBy: 'soc',
    });
    const cleared = await p.watcher.waitFor(identityId, (d) => d.sequence > raised.sequence);
    assert.equal(cleared.signals.length, 0);
    // The original raise, replayed late under a new event id (a re-sent batch from another system).
    await p.producer.send(p.topics.compromiseSignal, `identity:${identityId}`, {
      ...envelope(-50_000),
      signalId,
      op: 'raise',
      subject,
      kind: 'account_takeover',
      severity: 'critical',
      raisedBy: 'soc',
    });
    await p.producer.send(p.topics.login, identityId, {
      ...envelope(),
      identityId,
      outcome: 'failure',
      authenticator: 'password',
    });
    await p.producer.send(p.topics.compromiseSignal, `identity:${identityId}`, {
      ...envelope(),
      signalId: `after-${signalId}`,
      op: 'raise',
      subject,
      kind: 'credential_leak',
      severity: 'low',
      raisedBy: 'soc',
    });
    const last = await p.watcher.waitFor(identityId, (d) =>
      d.signals.some((s) => s.code === 'credential_compromised'),
    );
    assert.equal(
      last.signals.some((s) => s.code === 'takeover_confirmed'),
      false,
      'the late raise stayed cleared',
    );
    const seqs = p.watcher.forIdentity(identityId).map((d) => d.sequence);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      'sequences strictly increase',
    );
  });
});
