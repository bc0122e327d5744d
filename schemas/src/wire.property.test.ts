import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isContractError } from './contract-error.ts';
import { loadFixtures } from './fixtures.ts';
import { TOPICS, VALUE_TOPICS } from './topics.ts';
import {
  decodeMessage,
  detectEncoding,
  encodeRegistryAvro,
  MAX_MESSAGE_BYTES,
  parseJsonValue,
  readSchemaId,
  validateEvent,
} from './wire.ts';

/**
 * Whatever the bytes, the decoding helpers either return or throw a ContractError: never a
 * TypeError from deep inside a parser, never a hang. The engine relies on this to dead-letter a bad
 * message instead of crashing on it.
 */

const now = new Date('2025-06-01T12:00:00Z');
const fixtures = loadFixtures();
const validMessages = fixtures.flatMap((f) =>
  f.valid.map((c) => ({
    topic: f.topic,
    json: c.bytes,
    avro: encodeRegistryAvro(f.topic, JSON.parse(String(c.bytes)), 1),
  })),
);

/** Runs `fn`; passes if it returns or throws a ContractError. */
function returnsOrContractError(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    assert.ok(
      isContractError(error),
      `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
  }
}

const topic = fc.constantFrom(...VALUE_TOPICS);
const bytes = fc.uint8Array({ maxLength: 512 });
/** Bytes that look like the start of a registry message, so the Avro path gets exercised. */
const registryLike = fc
  .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), bytes)
  .map(([id, rest]) => Buffer.concat([Buffer.from([0]), id, rest]));
/** Bytes that look like JSON objects, so the JSON path gets past the first byte. */
const jsonLike = fc.oneof(
  fc.json().map((s) => Buffer.from(`{"k":${s}}`)),
  fc.string().map((s) => Buffer.from(`{${s}`)),
  fc
    .dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }))
    .map((o) => Buffer.from(JSON.stringify(o))),
);
const anyBytes = fc.oneof(bytes, registryLike, jsonLike);

describe('decoding never throws anything but ContractError', () => {
  it('detectEncoding classifies any bytes without throwing', () => {
    fc.assert(
      fc.property(anyBytes, (buf) => {
        assert.ok(['registry-avro', 'json', 'unknown'].includes(detectEncoding(buf)));
      }),
    );
  });

  it('readSchemaId returns an unsigned 32-bit id or a ContractError', () => {
    fc.assert(
      fc.property(anyBytes, (buf) =>
        returnsOrContractError(() => {
          const id = readSchemaId(buf);
          assert.ok(Number.isInteger(id) && id >= 0 && id <= 0xffffffff);
        }),
      ),
    );
  });

  it('parseJsonValue returns a plain object or a ContractError', () => {
    fc.assert(
      fc.property(anyBytes, (buf) =>
        returnsOrContractError(() => {
          const value = parseJsonValue(buf);
          assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value));
        }),
      ),
    );
  });

  it('validateEvent returns or throws ContractError for arbitrary values', () => {
    fc.assert(
      fc.property(topic, fc.anything(), (t, value) =>
        returnsOrContractError(() => validateEvent(t, value, { now })),
      ),
    );
  });

  it('validateEvent returns or throws ContractError for valid events with one field replaced', () => {
    const events = fixtures.flatMap((f) =>
      f.valid.map((c) => ({ topic: f.topic, value: JSON.parse(String(c.bytes)) })),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...events),
        fc.oneof(
          fc.string({ maxLength: 12 }),
          fc.constantFrom('occurredAt', 'channel', 'subject', 'uses', 'op'),
        ),
        fc.jsonValue({ maxDepth: 3 }),
        (event, key, replacement) =>
          returnsOrContractError(() =>
            validateEvent(event.topic, { ...event.value, [key]: replacement }, { now }),
          ),
      ),
    );
  });

  it('decodeMessage returns or throws ContractError for arbitrary bytes, with and without a writer schema', () => {
    fc.assert(
      fc.property(topic, anyBytes, fc.boolean(), (t, buf, withSchema) =>
        returnsOrContractError(() =>
          decodeMessage(t, buf, withSchema ? { now, writerSchema: TOPICS[t].avro } : { now }),
        ),
      ),
    );
  });

  it('decodeMessage returns or throws ContractError for truncated and corrupted valid messages', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...validMessages),
        fc.boolean(),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (message, avro, cut, flips) => {
          const original = avro ? message.avro : message.json;
          const buf = Buffer.from(original.subarray(0, cut % (original.length + 1)));
          for (const [at, byte] of flips) if (buf.length > 0) buf[at % buf.length] = byte;
          returnsOrContractError(() =>
            decodeMessage(message.topic, buf, { now, writerSchema: TOPICS[message.topic].avro }),
          );
        },
      ),
    );
  });

  it('rejects anything over MAX_MESSAGE_BYTES before parsing it', () => {
    const big = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20);
    big[0] = 0x7b;
    assert.throws(
      () => decodeMessage('identity.login.v1', big),
      (e: unknown) => isContractError(e) && e.code === 'message_too_large',
    );
  });
});

describe('regression: Avro block counts', () => {
  it('refuses an array count larger than the message instead of allocating it', () => {
    const device = {
      eventId: 'e',
      occurredAt: '2025-06-01T10:00:00Z',
      source: 's',
      identityId: 'u',
      deviceId: 'd',
      change: 'lost',
      authenticators: [],
    };
    const good = encodeRegistryAvro('identity.device.v1', device, 1);
    // authenticators is the last field: union branch 1, then the array's end-of-blocks 0x00.
    assert.equal(good.at(-1), 0x00);
    const bomb = Buffer.concat([good.subarray(0, -1), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x10, 0x0c])]);
    const started = Date.now();
    assert.throws(
      () =>
        decodeMessage('identity.device.v1', bomb, { now, writerSchema: TOPICS['identity.device.v1'].avro }),
      (e: unknown) => isContractError(e) && e.code === 'invalid_avro',
    );
    assert.ok(Date.now() - started < 1000);
  });
});
