import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import LZ4Codec from '@2l/kafkajs-lz4';
import kafkajs from 'kafkajs';
import { SnappyCodec } from 'kafkajs-snappy-typescript';

/**
 * Every compression codec Kafka producers use (gzip, snappy, lz4, zstd) for every kafkajs client in
 * the process, each behind a guard that turns a batch it cannot decompress into records the
 * pipeline dead-letters instead of an exception.
 *
 * Why the guard: kafkajs decompresses a record batch while it decodes a whole fetch response. A
 * throw there fails the fetch for every partition the broker leads, and the consumer retries the
 * same fetch forever: one corrupt or hostile batch (or a codec we lack) stalls the whole stage.
 * Instead, a batch that fails to decompress, or would decompress past `maxDecompressedBytes` (a
 * "zip bomb"), decodes as one placeholder record per record of the batch, carrying the reason in
 * the {@link UNDECODABLE_HEADER} header; the batch's last placeholder takes the batch's last
 * offset, so the consumer moves past it. Codecs themselves come from maintained packages
 * (snappy and lz4 through napi-rs bindings) and Node's own zlib (gzip, zstd); nothing here
 * compresses by hand.
 */

// kafkajs is CommonJS and assigns these late, where Node's named-export detection cannot see them.
const { CompressionCodecs, CompressionTypes } = kafkajs;

/** Set on placeholder records of a batch that could not be decompressed; the value is the error code. */
export const UNDECODABLE_HEADER = 'x-assurance-undecodable';
/** Why, in words (no payload bytes). */
export const UNDECODABLE_DETAIL_HEADER = 'x-assurance-undecodable-detail';
/** Size in bytes and sha256 of the compressed records, so an operator can match a captured batch. */
export const UNDECODABLE_SIZE_HEADER = 'x-assurance-batch-bytes';
export const UNDECODABLE_SHA256_HEADER = 'x-assurance-batch-sha256';

export type UndecodableCode = 'compression_invalid' | 'compression_too_large';

/** What the engine may produce with. */
export const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const COMPRESSION_TYPE: Readonly<Record<Compression, number>> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** The first bytes of an undecodable batch kept on its first placeholder, for forensics. */
const SAMPLE_BYTES = 16 * 1024;

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

class Undecodable extends Error {
  readonly code: UndecodableCode;
  constructor(code: UndecodableCode, message: string) {
    super(message);
    this.code = code;
  }
}

const unzip = promisify(zlib.unzip);
const gzip = promisify(zlib.gzip);
const zstdCompress = promisify(zlib.zstdCompress);
const zstdDecompress = promisify(zlib.zstdDecompress);

/** zlib stops at maxOutputLength with a RangeError: that is a bomb, not corruption. */
function zlibCodec(
  compress: (b: Buffer) => Promise<Buffer>,
  decompress: (b: Buffer, o: { maxOutputLength: number }) => Promise<Buffer>,
  max: () => number,
): Codec {
  return {
    compress: (encoder) => compress(encoder.buffer),
    async decompress(buffer) {
      try {
        return await decompress(buffer, { maxOutputLength: max() });
      } catch (err) {
        if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new Undecodable('compression_too_large', `decompresses to more than ${max()} bytes`);
        }
        throw err;
      }
    },
  };
}

/** Snappy's preamble states the uncompressed length (a little-endian base-128 varint). */
function snappyLength(buffer: Buffer, at: number): number {
  let result = 0;
  for (let i = 0, shift = 0; i < 5 && at + i < buffer.length; i++, shift += 7) {
    const byte = buffer[at + i] as number;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return result;
  }
  return Number.POSITIVE_INFINITY;
}

const XERIAL_HEADER = Buffer.from([130, 83, 78, 65, 80, 80, 89, 0]);

/**
 * Snappy allocates what the preamble claims before it reads a byte, so the claim is checked first:
 * raw snappy (librdkafka, kafkajs) or the xerial framing of snappy-java (Java clients).
 */
function snappyDeclaredSize(buffer: Buffer): number {
  if (!buffer.subarray(0, 8).equals(XERIAL_HEADER)) return snappyLength(buffer, 0);
  let total = 0;
  for (let at = 16; at + 4 <= buffer.length; ) {
    const size = buffer.readUInt32BE(at);
    total += snappyLength(buffer, at + 4);
    at += 4 + size;
  }
  return total;
}

function snappyCodec(max: () => number): Codec {
  const inner = new SnappyCodec().codec();
  return {
    compress: (encoder) => inner.compress(encoder),
    async decompress(buffer) {
      if (snappyDeclaredSize(buffer) > max()) {
        throw new Undecodable('compression_too_large', `declares more than ${max()} bytes uncompressed`);
      }
      const out = await inner.decompress(buffer);
      return typeof out === 'string' ? Buffer.from(out, 'utf8') : out;
    },
  };
}

function lz4Codec(): Codec {
  const inner = new (LZ4Codec as unknown as new () => { codec(): Codec })().codec();
  return { compress: (encoder) => inner.compress(encoder), decompress: (buffer) => inner.decompress(buffer) };
}

// kafkajs 2.2.4 (in maintenance, pinned) encodes records with this module; the placeholders must
// decode exactly like records the broker sent.
const require = createRequire(import.meta.url);
const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: {
  offsetDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}) => { buffer: Buffer };

/**
 * The records of the batch whose compressed records are `compressed`, as placeholders. kafkajs
 * hands the codec a view into the fetch response, so the batch header just before it gives the
 * record count and the last offset delta (RecordBatch v2: …Attributes int16, LastOffsetDelta int32,
 * FirstTimestamp, MaxTimestamp, ProducerId int64 ×3, ProducerEpoch int16, FirstSequence int32,
 * RecordCount int32, records).
 */
function placeholders(compressed: Buffer, codecId: number, error: Undecodable): Buffer {
  const countAt = compressed.byteOffset - 4;
  const attributesAt = countAt - 36;
  if (attributesAt < 0) throw error;
  const header = new DataView(compressed.buffer, attributesAt, 40);
  const attributes = header.getInt16(0);
  const lastOffsetDelta = header.getInt32(2);
  const count = header.getInt32(36);
  // Not the batch layout we expect (a legacy message set?): nothing safe to invent.
  if ((attributes & 0x07) !== codecId || count < 1 || count > lastOffsetDelta + 1 || count > 1_000_000) {
    throw error;
  }
  const headers = {
    [UNDECODABLE_HEADER]: error.code,
    [UNDECODABLE_DETAIL_HEADER]: error.message.slice(0, 300),
    [UNDECODABLE_SIZE_HEADER]: String(compressed.length),
    [UNDECODABLE_SHA256_HEADER]: createHash('sha256').update(compressed).digest('hex'),
  };
  const records: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    records.push(
      encodeRecord({
        offsetDelta: i === count - 1 ? lastOffsetDelta : i,
        key: null,
        value: i === 0 ? Buffer.from(compressed.subarray(0, SAMPLE_BYTES)) : Buffer.alloc(0),
        headers,
      }).buffer,
    );
  }
  return Buffer.concat(records);
}

function guarded(codecId: number, inner: Codec, max: () => number): Codec {
  return {
    compress: (encoder) => inner.compress(encoder),
    async decompress(buffer) {
      let out: Buffer;
      try {
        out = await inner.decompress(buffer);
      } catch (err) {
        const why =
          err instanceof Undecodable
            ? err
            : new Undecodable('compression_invalid', `cannot decompress: ${(err as Error).message}`);
        return placeholders(buffer, codecId, why);
      }
      if (out.length > max()) {
        return placeholders(
          buffer,
          codecId,
          new Undecodable('compression_too_large', `decompresses to more than ${max()} bytes`),
        );
      }
      return out;
    },
  };
}

function unsupported(codecId: number): Codec {
  const error = () => new Undecodable('compression_invalid', `unknown compression codec ${codecId}`);
  return {
    compress: () => Promise.reject(error()),
    decompress: async (buffer) => placeholders(buffer, codecId, error()),
  };
}

let maxDecompressed = 64 * 1024 * 1024;

/**
 * Registers the guarded codecs with kafkajs (a process-wide registry): call once at start, before
 * any consumer runs. `maxDecompressedBytes` bounds what one batch may decompress to.
 */
export function installCodecs(opts: { maxDecompressedBytes?: number } = {}): void {
  if (opts.maxDecompressedBytes !== undefined) maxDecompressed = opts.maxDecompressedBytes;
  const max = () => maxDecompressed;
  const codecs: Record<number, Codec> = {
    [CompressionTypes.GZIP]: guarded(CompressionTypes.GZIP, zlibCodec(gzip, unzip, max), max),
    [CompressionTypes.Snappy]: guarded(CompressionTypes.Snappy, snappyCodec(max), max),
    [CompressionTypes.LZ4]: guarded(CompressionTypes.LZ4, lz4Codec(), max),
    [CompressionTypes.ZSTD]: guarded(
      CompressionTypes.ZSTD,
      zlibCodec(zstdCompress, zstdDecompress, max),
      max,
    ),
    // The attribute bits allow three more ids, which no Kafka version defines.
    5: unsupported(5),
    6: unsupported(6),
    7: unsupported(7),
  };
  const registry = CompressionCodecs as unknown as Record<number, () => Codec>;
  for (const [id, codec] of Object.entries(codecs)) registry[Number(id)] = () => codec;
}
