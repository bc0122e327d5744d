import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, describe, test } from 'node:test';
import { COMPRESSION_TYPE, COMPRESSIONS, installCodecs, UNDECODABLE_HEADER } from './codecs.ts';

// kafkajs's own record-batch encoder and decoder (the code a fetch runs), so these tests exercise
// the codecs exactly as a consumer meets them.
const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder');
const Long = require('kafkajs/src/utils/long');
const Record = require('kafkajs/src/protocol/recordBatch/record/v0');
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0');
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder');

interface DecodedRecord {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
}

const FIRST_OFFSET = 1000;

/** A record batch of `values` as a broker would send it, compressed with `compression`. */
async function batchOf(values: string[], compression: number, lastOffsetDelta = values.length - 1) {
  const encoded: Buffer = (
    await RecordBatch({
      compression,
      firstOffset: Long.fromInt(FIRST_OFFSET),
      lastOffsetDelta,
      records: values.map((v, i) =>
        Record({ offsetDelta: i, key: Buffer.from(`k${i}`), value: Buffer.from(v) }),
      ),
    })
  ).buffer;
  // A fetch response holds other bytes before the batch; the decoder gets a view into it.
  return Buffer.concat([Buffer.alloc(64, 0xee), encoded]);
}

async function decode(response: Buffer): Promise<DecodedRecord[]> {
  const decoder = new Decoder(response);
  decoder.forward(64);
  return (await decodeBatch(decoder)).records as DecodedRecord[];
}

/** The compressed records of a batch start after its 61-byte header (RecordBatch v2). */
const COMPRESSED_AT = 64 + 61;

after(() => installCodecs({ maxDecompressedBytes: 64 * 1024 * 1024 }));

describe('compression codecs', () => {
  installCodecs();
  const values = Array.from({ length: 20 }, (_, i) => `{"eventId":"e-${i}","padding":"${'x'.repeat(200)}"}`);

  for (const name of COMPRESSIONS) {
    test(`${name}: a batch round-trips through kafkajs's own encoder and decoder`, async () => {
      const records = await decode(await batchOf(values, COMPRESSION_TYPE[name]));
      assert.deepEqual(
        records.map((r) => r.value?.toString()),
        values,
      );
      assert.deepEqual(
        records.map((r) => r.offset),
        values.map((_, i) => String(FIRST_OFFSET + i)),
      );
    });
  }

  for (const name of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    test(`${name}: a corrupt batch decodes as placeholders, one per record, the last at the batch's last offset`, async () => {
      const response = await batchOf(values, COMPRESSION_TYPE[name], 24);
      for (let i = COMPRESSED_AT + 4; i < response.length; i++) response[i] = 0xa5;
      const records = await decode(response);
      assert.equal(records.length, values.length);
      assert.equal(
        records.at(-1)?.offset,
        String(FIRST_OFFSET + 24),
        'the consumer moves past the whole batch',
      );
      for (const r of records) {
        assert.equal(r.headers[UNDECODABLE_HEADER]?.toString(), 'compression_invalid');
        assert.equal(r.key, null);
      }
      assert.ok((records[0]?.value?.length ?? 0) > 0, 'the first carries the batch’s first bytes');
    });
  }

  for (const name of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
    test(`${name}: a batch that decompresses past the bound is refused as compression_too_large`, async () => {
      const response = await batchOf([`{"bomb":"${'A'.repeat(100_000)}"}`], COMPRESSION_TYPE[name]);
      installCodecs({ maxDecompressedBytes: 10_000 });
      try {
        const [only] = await decode(response);
        assert.equal(only?.headers[UNDECODABLE_HEADER]?.toString(), 'compression_too_large');
      } finally {
        installCodecs({ maxDecompressedBytes: 64 * 1024 * 1024 });
      }
    });
  }

  test('a codec id no Kafka version defines decodes as placeholders, not a crash', async () => {
    const response = await batchOf(values.slice(0, 3), COMPRESSION_TYPE.gzip);
    // Attributes sit 21 bytes into the batch (offset, length, epoch, magic, crc); codec id 6.
    const attributesAt = 64 + 21;
    response.writeInt16BE((response.readInt16BE(attributesAt) & ~0x07) | 6, attributesAt);
    const records = await decode(response);
    assert.equal(records.length, 3);
    assert.equal(records[0]?.headers[UNDECODABLE_HEADER]?.toString(), 'compression_invalid');
  });
});
