import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AssuranceError } from '@assurance/core';
import { TOPICS } from '@assurance/schemas';
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

describe('RegistryCodec.decode', () => {
  test('a cached schema id decodes with the registry down', async () => {
    const d = await offlineCodec().decode(wire(SCHEMA_ID, simSwap.toBuffer(good)));
    assert.equal(d.encoding, 'registry-avro');
    const { carrier: _absent, ...expected } = good;
    assert.deepEqual(d.value, expected, 'an absent optional (Avro null) is dropped, as JSON would omit it');
  });

  test('an unknown id with the registry down is retriable, never a skip', async () => {
    await assert.rejects(
      offlineCodec().decode(wire(99, Buffer.from([1, 2, 3]))),
      (e: AssuranceError) => e.code === 'registry_unavailable' && e.retriable,
    );
  });

  test('JSON is told apart from the wire format per message', async () => {
    const d = await offlineCodec().decode(Buffer.from(' {"a":1}'));
    assert.deepEqual(d, { encoding: 'json', value: { a: 1 } });
  });

  test('property: random bytes either decode or fail with a dead-letter class, never anything else', async () => {
    const codec = offlineCodec();
    const deadLetter = new Set([
      'message_too_large',
      'empty_message',
      'unknown_encoding',
      'invalid_json',
      'invalid_avro',
    ]);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        // Random bytes starting with 0x00 would name random schema ids; pin them to the cached one.
        const buf =
          bytes[0] === 0 && bytes.length >= 5
            ? wire(SCHEMA_ID, Buffer.from(bytes.subarray(5)))
            : Buffer.from(bytes);
        try {
          await codec.decode(buf);
        } catch (err) {
          assert.ok(err instanceof AssuranceError, `not an AssuranceError: ${String(err)}`);
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
          codec.decode(full.subarray(0, cut)),
          (e: AssuranceError) => e.code === 'invalid_avro',
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
    await assert.rejects(codec.decode(evil), (e: AssuranceError) => e.code === 'invalid_avro');
    assert.ok(Date.now() - t0 < 1000);
  });

  test('oversized values are refused unread', async () => {
    await assert.rejects(
      offlineCodec().decode(Buffer.alloc(5000, 0x7b)),
      (e: AssuranceError) => e.code === 'message_too_large',
    );
  });
});
