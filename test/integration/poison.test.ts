/**
 * The poison corpus: every class of bad input on every input topic, in both encodings where it
 * applies, from our Node producer and from librdkafka (Python). Each must land in the dead-letter
 * topic with its headers and original bytes, the engine's lag must return to 0, and a good event
 * after them must be decided. Plus what only compression and size can do: a value far over the
 * limit that arrives gzip-compressed, a batch that decompresses past the bound, and a dead letter
 * the broker refuses.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@assurance/core';
import { createAdmin, createKafka, type InboundMessage, parseBrokers } from '@assurance/kafka';
import {
  BASE_TOPICS,
  DLQ_HEADERS,
  INPUT_ROLES,
  type InputRole,
  loadFixtures,
  type ValueTopicName,
} from '@assurance/schemas';
import { envelope, startPipeline } from '../src/pipeline.ts';
import { producePython, pythonPeer } from '../src/python-peer.ts';
import { pollUntil } from '../src/wait.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;

const BASE: Record<InputRole, ValueTopicName> = BASE_TOPICS;
const IDENTITY_KEYED = new Set<InputRole>(['login', 'device', 'channelBinding']);
const fixtures = new Map(loadFixtures().map((f) => [f.topic, f]));

/** A valid event of the topic, as the fixtures hold it (normalized). */
function sample(role: InputRole): Record<string, unknown> {
  const f = fixtures.get(BASE[role])?.valid[0];
  assert.ok(f, `a valid fixture for ${BASE[role]}`);
  return { ...(f.expected as Record<string, unknown>), ...envelope() };
}

/** The same bytes with the first occurrence of `needle` broken by an 0xff byte. */
function breakUtf8(bytes: Buffer, needle: string): Buffer {
  const at = bytes.indexOf(Buffer.from(needle));
  assert.ok(at >= 0, `${needle} is in the encoding`);
  const out = Buffer.from(bytes);
  out[at + 1] = 0xff;
  return out;
}

interface Poison {
  readonly cls: string;
  readonly role: InputRole;
  readonly encoding: 'json' | 'avro' | 'bytes';
  readonly key: string;
  readonly bytes: Buffer;
}

/** Every class that applies to `role`, with keys unique to each message. */
async function corpus(role: InputRole, client: string): Promise<Poison[]> {
  const s = sample(role);
  const topic = p.topics[role];
  const json = Buffer.from(JSON.stringify(s));
  const avro = await p.producer.codec.encode(`${topic}-value`, s);
  const header = avro.subarray(0, 5);
  const unknownId = Buffer.from(header);
  unknownId.writeUInt32BE(0x7ffffff0, 1);
  const out: Array<Omit<Poison, 'role' | 'key'>> = [
    {
      cls: 'message_too_large',
      encoding: 'json',
      bytes: Buffer.from(JSON.stringify({ ...s, pad: 'x'.repeat(70_000) })),
    },
    { cls: 'empty_message', encoding: 'bytes', bytes: Buffer.alloc(0) },
    { cls: 'unknown_encoding', encoding: 'bytes', bytes: Buffer.from([0x01, 0x02, 0x03, 0x04]) },
    { cls: 'invalid_json', encoding: 'json', bytes: Buffer.from('{"eventId": "half a value", ') },
    { cls: 'invalid_utf8', encoding: 'json', bytes: breakUtf8(json, String(s.eventId)) },
    { cls: 'invalid_utf8', encoding: 'avro', bytes: breakUtf8(avro, String(s.eventId)) },
    { cls: 'invalid_avro', encoding: 'avro', bytes: Buffer.concat([header, Buffer.alloc(8, 0xff)]) },
    { cls: 'unknown_schema_id', encoding: 'avro', bytes: Buffer.concat([unknownId, avro.subarray(5)]) },
    { cls: 'validation_failed', encoding: 'json', bytes: Buffer.from('{"eventId":"only this"}') },
    // Fits the Avro schema (a string) but not the contract (an empty eventId).
    {
      cls: 'validation_failed',
      encoding: 'avro',
      bytes: await p.producer.codec.encode(`${topic}-value`, { ...s, eventId: '' }),
    },
  ];
  if (IDENTITY_KEYED.has(role)) out.push({ cls: 'key_mismatch', encoding: 'json', bytes: json });
  return out.map((x, i) => ({ ...x, role, key: `poison-${client}-${role}-${x.cls}-${x.encoding}-${i}` }));
}

const byKey = (key: string) => (m: InboundMessage) => m.key?.toString() === key;

before(async () => {
  pythonPeer();
  p = await startPipeline({ MAX_BATCH_DECOMPRESSED_BYTES: String(1024 * 1024) });
});
after(() => p?.stop());

describe('poison corpus', () => {
  test('every class on every input topic, from Node and from librdkafka, is dead-lettered with its headers', async () => {
    const all: Poison[] = [];
    for (const role of INPUT_ROLES) {
      const fromNode = await corpus(role, 'node');
      for (const x of fromNode) await p.producer.sendRaw(p.topics[x.role], x.key, x.bytes);
      const fromPython = await corpus(role, 'python');
      const { errors } = producePython(
        p.config.KAFKA_BROKERS,
        p.config.SCHEMA_REGISTRY_URL,
        fromPython.map((x) => ({ topic: p.topics[x.role], key: x.key, encoding: 'raw', raw: x.bytes })),
      );
      assert.deepEqual(errors, []);
      all.push(...fromNode, ...fromPython);
    }
    const seen = new Map<string, number>();
    for (const x of all) {
      const m = await p.dlq.waitFor(byKey(x.key));
      const h = m.headers;
      const expected = x.cls;
      assert.equal(h[DLQ_HEADERS.errorClass], expected, `${x.key}: ${h[DLQ_HEADERS.errorMessage]}`);
      assert.equal(h[DLQ_HEADERS.sourceTopic], p.topics[x.role]);
      assert.match(h[DLQ_HEADERS.sourcePartition] ?? '', /^\d+$/);
      assert.match(h[DLQ_HEADERS.sourceOffset] ?? '', /^\d+$/);
      assert.ok(!Number.isNaN(Date.parse(h[DLQ_HEADERS.sourceTimestamp] ?? '')));
      assert.ok((h[DLQ_HEADERS.errorMessage] ?? '').length > 0);
      if (x.bytes.length > p.config.DLQ_MAX_BYTES) {
        assert.equal(h[DLQ_HEADERS.truncated], 'value');
        assert.equal(h[DLQ_HEADERS.originalBytes], String(x.bytes.length));
        assert.deepEqual(m.value, x.bytes.subarray(0, p.config.DLQ_MAX_BYTES));
      } else {
        assert.deepEqual(m.value ?? Buffer.alloc(0), x.bytes, `${x.key}: the original bytes`);
      }
      seen.set(expected, (seen.get(expected) ?? 0) + 1);
    }
    process.stderr.write(
      `[poison] ${all.length} dead letters: ${JSON.stringify(Object.fromEntries(seen))}\n`,
    );
  });

  test('after the corpus, good events on every input topic are decided and the lag returns to 0', async () => {
    const id = `good-${Date.now().toString(36)}`;
    const phone = `+4915114${String(Date.now()).slice(-6)}`;
    const mailbox = `${id}@example.org`;
    const bind = (channel: object, uses: object) =>
      p.producer.send(p.topics.channelBinding, id, {
        ...envelope(-60_000),
        identityId: id,
        op: 'bound',
        channel,
        uses,
      });
    await bind({ type: 'phone', value: phone }, { authenticators: ['sms_otp'], recovery: [] });
    await bind({ type: 'email', value: mailbox }, { authenticators: ['email_otp'], recovery: [] });
    await p.watcher.waitFor(id, (d) => d.tiers.medium.acceptableAuthenticators.includes('email_otp'));
    await p.producer.send(p.topics.login, id, {
      ...envelope(),
      identityId: id,
      outcome: 'success',
      authenticator: 'totp',
    });
    await p.producer.send(p.topics.device, id, {
      ...envelope(),
      identityId: id,
      deviceId: `dev-${id}`,
      change: 'compromised',
    });
    await p.watcher.waitFor(id, (d) => d.signals.some((s) => s.code === 'device_compromised'));
    await p.producer.send(p.topics.simSwap, phone, {
      ...envelope(),
      phoneNumber: phone,
      swappedAt: new Date().toISOString(),
      changeType: 'port_out',
    });
    await p.producer.send(p.topics.mailboxChange, mailbox, {
      ...envelope(),
      mailbox,
      change: 'recovery_changed',
    });
    await p.watcher.waitFor(id, (d) =>
      ['sim_swap', 'mailbox_tampered'].every((c) => d.signals.some((s) => s.code === c)),
    );
    await p.producer.send(p.topics.compromiseSignal, `identity:${id}`, {
      ...envelope(),
      signalId: `INC-${id}`,
      op: 'raise',
      subject: { type: 'identity', value: id },
      kind: 'account_takeover',
      severity: 'critical',
      raisedBy: 'soc',
    });
    await p.watcher.waitFor(id, (d) => d.tiers.critical.outcome === 'deny');

    const admin = await createAdmin(
      createKafka({
        brokers: parseBrokers(p.config.KAFKA_BROKERS),
        clientId: 'lag',
        logger: createLogger('lag', 'warn'),
      }),
    );
    try {
      let lag = -1;
      await pollUntil(
        async () => {
          const router = (
            await Promise.all(
              INPUT_ROLES.map((r) => admin.lag(`${p.config.ENGINE_GROUP_ID}.router`, p.topics[r])),
            )
          ).flat();
          const decider = await admin.lag(`${p.config.ENGINE_GROUP_ID}.decider`, p.topics.identityEvents);
          lag = [...router, ...decider].reduce((n, x) => n + x.lag, 0);
          return lag === 0 ? true : undefined;
        },
        30_000,
        () => `the engine's lag to reach 0 (still ${lag})`,
        200,
      );
    } finally {
      await admin.close();
    }
  });
});

describe('what only size and compression can do', () => {
  test('a value far over the limit, arriving gzip-compressed, is dead-lettered cut to DLQ_MAX_BYTES with its size and sha256', async () => {
    const key = `huge-${Date.now().toString(36)}`;
    const huge = Buffer.from(JSON.stringify({ ...sample('login'), pad: 'A'.repeat(900_000) }));
    const { errors } = producePython(p.config.KAFKA_BROKERS, p.config.SCHEMA_REGISTRY_URL, [
      { topic: p.topics.login, key, encoding: 'raw', raw: huge, compression: 'gzip' },
    ]);
    assert.deepEqual(errors, []);
    const m = await p.dlq.waitFor(byKey(key));
    assert.equal(m.headers[DLQ_HEADERS.errorClass], 'message_too_large');
    assert.equal(m.headers[DLQ_HEADERS.truncated], 'value');
    assert.equal(m.headers[DLQ_HEADERS.originalBytes], String(huge.length));
    assert.equal(m.headers[DLQ_HEADERS.originalSha256], createHash('sha256').update(huge).digest('hex'));
    assert.equal(m.value?.length, p.config.DLQ_MAX_BYTES);
  });

  test('a batch that decompresses past MAX_BATCH_DECOMPRESSED_BYTES is dead-lettered record by record, and the partition moves on', async () => {
    // Two records of 1.2 MB of one letter: a few KB compressed (the broker takes it), past the
    // engine's 1 MiB bound once decompressed, in one batch or two.
    const keys = [0, 1].map((i) => `bomb-${Date.now().toString(36)}-${i}`);
    const { errors } = producePython(
      p.config.KAFKA_BROKERS,
      p.config.SCHEMA_REGISTRY_URL,
      keys.map((key) => ({
        topic: p.topics.device,
        key,
        encoding: 'raw',
        raw: Buffer.alloc(1_200_000, 0x41),
        compression: 'zstd',
      })),
    );
    assert.deepEqual(errors, []);
    const bombs = () =>
      p.dlq.messages.filter((m) => m.headers[DLQ_HEADERS.errorClass] === 'compression_too_large');
    await p.dlq.waitFor(() => bombs().length >= 2);
    for (const m of bombs()) {
      assert.equal(m.headers[DLQ_HEADERS.sourceTopic], p.topics.device);
      assert.match(m.headers['x-assurance-batch-sha256'] ?? '', /^[0-9a-f]{64}$/);
    }
    const id = `after-bomb-${Date.now().toString(36)}`;
    await p.producer.send(p.topics.device, id, {
      ...envelope(),
      identityId: id,
      deviceId: `d-${id}`,
      change: 'enrolled',
    });
    await p.watcher.waitFor(id, () => true);
  });

  test('a dead letter the broker refuses is recorded in Redis and the engine moves on', async () => {
    const admin = await createAdmin(
      createKafka({
        brokers: parseBrokers(p.config.KAFKA_BROKERS),
        clientId: 'dlq-limit',
        logger: createLogger('dlq', 'warn'),
      }),
    );
    await admin.setTopicConfigs(p.topics.dlq, { 'max.message.bytes': '2048' });
    try {
      // The broker applies a config change after acknowledging it: wait until it refuses a record
      // the limit rules out, or the engine's dead letter could still slip through.
      await pollUntil(
        () =>
          p.producer.sendRaw(p.topics.dlq, 'limit-probe', 'x'.repeat(4096)).then(
            () => undefined,
            (err: Error) => (/too large|larger than the max/i.test(err.message) ? true : Promise.reject(err)),
          ),
        15_000,
        () => 'the broker to apply max.message.bytes=2048 to the dead-letter topic',
        100,
      );
      const key = `refused-${Date.now().toString(36)}`;
      await p.producer.sendRaw(p.topics.login, key, `{"not json at all ${'x'.repeat(8000)}`);
      const id = `after-refusal-${Date.now().toString(36)}`;
      await p.producer.send(p.topics.login, id, {
        ...envelope(),
        identityId: id,
        outcome: 'success',
        authenticator: 'totp',
      });
      await p.watcher.waitFor(id, () => true);
      const unwritten = await p.engine.store.unwrittenDeadLetters();
      assert.ok(
        unwritten.some((u) => u.topic === p.topics.login && u.errorClass === 'invalid_json'),
        JSON.stringify(unwritten),
      );
      assert.match(
        await p.engine.metrics.registry.metrics(),
        /assurance_dead_letters_unwritten_total\{error="invalid_json"\} [1-9]/,
      );
    } finally {
      await admin.setTopicConfigs(p.topics.dlq, { 'max.message.bytes': '1048588' });
      await admin.close();
    }
  });
});

describe('the internal topic is read like any input', () => {
  test('a message that is not JSON, or fails the internal schema, is dead-lettered and fails its identity closed at once', async () => {
    const id = `internal-${Date.now().toString(36)}`;
    const trigger = { eventId: `evt-${id}`, topic: p.topics.login, occurredAt: new Date().toISOString() };
    const cases: Array<[string, string]> = [
      ['invalid_json', '{"v":2,"kind":"apply", '],
      // Well-formed JSON, a v2 envelope, but a binding to a channel ref no router would write.
      [
        'validation_failed',
        JSON.stringify({
          v: 2,
          kind: 'apply',
          identityId: id,
          tenant: null,
          trigger,
          receivedAtMs: Date.now(),
          mutations: [{ t: 'b', ref: 'not-a-hash', at: 1, type: 'phone', auth: 1, rec: 0, bat: 1 }],
        }),
      ],
    ];
    for (const [cls, value] of cases) {
      const key = `${id}-${cls}`;
      await p.producer.sendRaw(p.topics.identityEvents, key, value);
      const m = await p.dlq.waitFor(byKey(key));
      assert.equal(m.headers[DLQ_HEADERS.errorClass], cls);
      assert.equal(m.headers[DLQ_HEADERS.sourceTopic], p.topics.identityEvents);
      // The message's key is an identity: it is held strictly until the SOC looks.
      const d = await p.watcher.waitFor(key, (x) => x.signals.some((s) => s.code === 'signal_unreadable'));
      assert.equal(d.tiers.critical.outcome, 'hold');
    }
    // The partition goes on.
    const after = `${id}-after`;
    await p.producer.send(p.topics.login, after, {
      ...envelope(),
      identityId: after,
      outcome: 'success',
      authenticator: 'totp',
    });
    await p.watcher.waitFor(after, () => true);
  });
});
