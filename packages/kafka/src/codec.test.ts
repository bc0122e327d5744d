import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AssuranceError } from '@assurance/core';
import { ContractError, TOPICS } from '@assurance/schemas';
import avro from 'avsc';
import fc from 'fast-check';
import { RegistryCodec } from './codec.ts';

const SCHEMA_ID = 7;
const simSwap = avro.Type.forSchema(TOPICS['identity.sim-swap.v1'].avro as avro.Schema);

/** A codec whose registry is unreachable but which already knows schema 7 (as after a first fetch). */
function offlineCodec(): RegistryCodec {
  const codec = new RegistryCodec({ url: 'http://127.0.0.1:1/apis/ccompat/v7', maxMessageBytes: 4096 });
  codec.registry.cache.setSchema(SCHEMA_ID, 'AVRO' as never, simSwap as never);
  return codec;
}

function wire(id: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, payload]);
}

const good = {
  eventId: 'e-1',
  occurredAt: '2026-11-28T10:00:00.000Z',
  source: 'carrier',
  phoneNumber: '+33612345678',
  swappedAt: '2026-11-28T09:00:00.000Z',
  changeType: 'sim_change',
  carrier: null,
};

const TOPIC = 'identity.sim-swap.v1';
/** The class a failure carries, whichever error type holds it. */
const codeOf = (e: unknown) =>
  e instanceof ContractError || e instanceof AssuranceError ? e.code : `not typed: ${String(e)}`;

describe('RegistryCodec.decodeEvent', () => {
  test('a cached schema id decodes with the registry down', async () => {
    const d = await offlineCodec().decodeEvent(TOPIC, wire(SCHEMA_ID, simSwap.toBuffer(good)));
    assert.equal(d.encoding, 'registry-avro');
    const { carrier: _absent, ...expected } = good;
    assert.deepEqual(d.value, expected, 'an absent optional (Avro null) is dropped, as JSON would omit it');
  });

  test('an unknown id with the registry down is retriable, never a skip', async () => {
    await assert.rejects(
      offlineCodec().decodeEvent(TOPIC, wire(99, Buffer.from([1, 2, 3]))),
      (e: AssuranceError) => e.code === 'registry_unavailable' && e.disposition === 'retry',
    );
  });

  test('JSON is told apart from the wire format per message', async () => {
    const { carrier: _null, ...json } = good;
    const d = await offlineCodec().decodeEvent(TOPIC, Buffer.from(` ${JSON.stringify(json)}`));
    assert.equal(d.encoding, 'json');
    assert.equal(d.value.phoneNumber, good.phoneNumber);
  });

  test('strict UTF-8: invalid bytes in JSON, an escaped lone surrogate and invalid bytes in an Avro string are refused', async () => {
    const codec = offlineCodec();
    const json = (eventId: Buffer) =>
      Buffer.concat([
        Buffer.from('{"eventId":"'),
        eventId,
        Buffer.from(
          `","occurredAt":"${good.occurredAt}","source":"carrier","phoneNumber":"${good.phoneNumber}","swappedAt":"${good.swappedAt}","changeType":"sim_change"}`,
        ),
      ]);
    // Two ids that differ only in invalid bytes would both become "e-\ufffd" if repaired.
    for (const bad of [Buffer.from([0x65, 0x2d, 0xff]), Buffer.from([0x65, 0x2d, 0xc3])]) {
      await assert.rejects(codec.decodeEvent(TOPIC, json(bad)), (e) => codeOf(e) === 'invalid_utf8');
    }
    await assert.rejects(
      codec.decodeEvent(TOPIC, json(Buffer.from('e-\\ud800'))),
      (e) => codeOf(e) === 'invalid_utf8',
    );
    // A legitimate U+FFFD is text like any other.
    assert.equal((await codec.decodeEvent(TOPIC, json(Buffer.from('e-\ufffd')))).value.eventId, 'e-\ufffd');

    const avroBytes = simSwap.toBuffer({ ...good, eventId: 'e-AA' });
    const at = avroBytes.indexOf(Buffer.from('e-AA'));
    avroBytes[at + 2] = 0xff;
    await assert.rejects(
      codec.decodeEvent(TOPIC, wire(SCHEMA_ID, avroBytes)),
      (e) => codeOf(e) === 'invalid_utf8',
    );
  });

  test('property: random bytes either decode or fail with a dead-letter class, never anything else', async () => {
    const codec = offlineCodec();
    const deadLetter = new Set([
      'message_too_large',
      'empty_message',
      'unknown_encoding',
      'invalid_json',
      'invalid_utf8',
      'invalid_avro',
      'validation_failed',
    ]);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        // Random bytes starting with 0x00 would name random schema ids; pin them to the cached one.
        const buf =
          bytes[0] === 0 && bytes.length >= 5
            ? wire(SCHEMA_ID, Buffer.from(bytes.subarray(5)))
            : Buffer.from(bytes);
        try {
          await codec.decodeEvent(TOPIC, buf);
        } catch (err) {
          assert.ok(err instanceof ContractError, `not a ContractError: ${String(err)}`);
          assert.ok(deadLetter.has(err.code), err.code);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('property: every truncation of a valid Avro message fails as invalid_avro', async () => {
    const codec = offlineCodec();
    const full = wire(SCHEMA_ID, simSwap.toBuffer(good));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 6, max: full.length - 1 }), async (cut) => {
        await assert.rejects(
          codec.decodeEvent(TOPIC, full.subarray(0, cut)),
          (e) => codeOf(e) === 'invalid_avro',
        );
      }),
    );
  });

  test('a payload claiming a huge string is refused before avsc reads it', async () => {
    const codec = offlineCodec();
    const t0 = Date.now();
    // The carrier union branch index, then a string length of 2^31-ish in zigzag varint.
    const evil = wire(
      SCHEMA_ID,
      Buffer.concat([simSwap.toBuffer(good).subarray(0, 10), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f])]),
    );
    await assert.rejects(codec.decodeEvent(TOPIC, evil), (e) => codeOf(e) === 'invalid_avro');
    assert.ok(Date.now() - t0 < 1000);
  });

  test('oversized values are refused unread', async () => {
    await assert.rejects(
      offlineCodec().decodeEvent(TOPIC, Buffer.alloc(5000, 0x7b)),
      (e) => codeOf(e) === 'message_too_large',
    );
  });
});

describe('decoder fuzzing, every input topic', () => {
  /** What a message may do wrong, each a dead-letter class; nothing else may come out. */
  const DEAD_LETTER = new Set([
    'message_too_large',
    'empty_message',
    'unknown_encoding',
    'invalid_json',
    'invalid_utf8',
    'invalid_avro',
    'validation_failed',
    'unknown_schema_id',
  ]);
  const topics = Object.values(TOPICS)
    .filter((t) => t.kind === 'input')
    .map((t) => t.name);
  const codec = new RegistryCodec({ url: 'http://127.0.0.1:1/apis/ccompat/v7', maxMessageBytes: 4096 });
  for (const [i, name] of topics.entries()) {
    codec.registry.cache.setSchema(
      100 + i,
      'AVRO' as never,
      avro.Type.forSchema(TOPICS[name].avro as avro.Schema) as never,
    );
  }

  /** Bytes that look like the real thing often enough to get past the first checks. */
  const messages = fc
    .oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.json().map((j) => Buffer.from(j)),
      fc.dictionary(fc.string(), fc.jsonValue()).map((o) => Buffer.from(JSON.stringify(o))),
      // Strings with lone surrogates escape as \\udXXX in JSON.
      fc.string({ unit: 'binary' }).map((s) => Buffer.from(JSON.stringify({ eventId: s, source: s }))),
      // Cached ids only (any topic's schema, so often the wrong one): an id the registry must be asked
      // about while it is down is retried, never dead-lettered (tested above).
      fc
        .tuple(fc.integer({ min: 0, max: topics.length - 1 }), fc.uint8Array({ maxLength: 200 }))
        .map(([id, payload]) => wire(100 + id, Buffer.from(payload))),
    )
    .map((b) => {
      // Random bytes starting with 0x00 name random schema ids: pin them to a cached one.
      if (
        b[0] === 0 &&
        b.length >= 5 &&
        (b.readUInt32BE(1) < 100 || b.readUInt32BE(1) >= 100 + topics.length)
      ) {
        b.writeUInt32BE(100, 1);
      }
      return b;
    });

  test('property: decodeEvent returns a value or throws a ContractError with a dead-letter class', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...topics), messages, async (topic, bytes) => {
        try {
          await codec.decodeEvent(topic, bytes);
        } catch (err) {
          assert.ok(err instanceof ContractError, `${topic}: not a ContractError: ${String(err)}`);
          assert.ok(DEAD_LETTER.has(err.code), err.code);
          // Messages go into headers and logs: they must not quote the input.
          assert.ok(err.message.length <= 500);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
