/**
 * A bounds-checking pre-scan of Avro binary data, run before avsc decodes untrusted bytes.
 *
 * Why: avsc trusts array and map block counts. A 7-byte message whose array count says 2^31 makes
 * it allocate and loop two billion times before it notices the buffer ended: one poisoned message
 * would stall a partition. The scan walks the writer schema over the bytes in O(bytes), refusing any
 * block count larger than the bytes left (every item of a type that takes at least one byte needs
 * one), any length past the end, and any enum or union index out of range. It also refuses strings
 * that are not strict UTF-8 ({@link InvalidUtf8Error}), which avsc would silently repair.
 */

/** The parts of an avsc Type the scan reads (avsc's typings leave most of them out). */
interface ScanType {
  typeName: string;
  itemsType?: ScanType;
  valuesType?: ScanType;
  underlyingType?: ScanType;
  fields?: { type: ScanType }[];
  types?: ScanType[];
  symbols?: string[];
  size?: number;
}

/**
 * A string whose bytes are not UTF-8. avsc would decode it with replacement characters, so two
 * different ids could become one; the contract refuses them instead (`invalid_utf8`).
 */
export class InvalidUtf8Error extends RangeError {
  override readonly name = 'InvalidUtf8Error';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Most items one block may hold when an item can take zero bytes (arrays of null, empty records). */
const ZERO_SIZE_BLOCK_MAX = 1024;

class Scanner {
  pos = 0;
  readonly #buf: Uint8Array;
  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  get remaining(): number {
    return this.#buf.length - this.pos;
  }

  skip(n: number): void {
    if (n < 0 || n > this.remaining) throw new RangeError('Avro data ends early');
    this.pos += n;
  }

  /** Skips a string of `n` bytes, which must be strict UTF-8. */
  text(n: number): void {
    const start = this.pos;
    this.skip(n);
    try {
      strictUtf8.decode(this.#buf.subarray(start, this.pos));
    } catch {
      throw new InvalidUtf8Error('Avro string is not valid UTF-8');
    }
  }

  /** A zig-zag varint as a JS number (exact up to 2^53, which is all a bound check needs). */
  long(): number {
    let raw = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = this.#buf[this.pos++];
      if (byte === undefined) throw new RangeError('Avro data ends early');
      raw += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
      scale *= 128;
    }
    throw new RangeError('Avro varint longer than 10 bytes');
  }
}

/** True when a value of `type` always takes at least one byte. */
function takesBytes(type: ScanType): boolean {
  switch (type.typeName) {
    case 'null':
      return false;
    case 'record':
    case 'error':
      return (type.fields ?? []).some((f) => takesBytes(f.type));
    case 'fixed':
      return (type.size ?? 0) > 0;
    default:
      return type.underlyingType ? takesBytes(type.underlyingType) : true;
  }
}

function scan(type: ScanType, s: Scanner, depth: number): void {
  if (depth > 64) throw new RangeError('Avro schema nested too deeply');
  if (type.underlyingType) {
    scan(type.underlyingType, s, depth + 1);
    return;
  }
  // avsc names unions `union:wrapped` / `union:unwrapped`.
  switch (type.typeName.startsWith('union') ? 'union' : type.typeName) {
    case 'null':
      return;
    case 'boolean':
      s.skip(1);
      return;
    case 'int':
    case 'long':
      s.long();
      return;
    case 'float':
      s.skip(4);
      return;
    case 'double':
      s.skip(8);
      return;
    case 'bytes':
      s.skip(s.long());
      return;
    case 'string':
      s.text(s.long());
      return;
    case 'fixed':
      s.skip(type.size ?? 0);
      return;
    case 'enum': {
      const index = s.long();
      if (index < 0 || index >= (type.symbols?.length ?? 0))
        throw new RangeError('Avro enum index out of range');
      return;
    }
    case 'union': {
      const index = s.long();
      const branch = type.types?.[index];
      if (!branch) throw new RangeError('Avro union index out of range');
      scan(branch, s, depth + 1);
      return;
    }
    case 'record':
    case 'error':
      for (const field of type.fields ?? []) scan(field.type, s, depth + 1);
      return;
    case 'array':
    case 'map': {
      const item = (type.typeName === 'array' ? type.itemsType : type.valuesType) as ScanType;
      const minBytes = type.typeName === 'map' || takesBytes(item);
      for (;;) {
        let count = s.long();
        if (count === 0) return;
        if (count < 0) {
          count = -count;
          s.long(); // block size in bytes, unused
        }
        if (minBytes ? count > s.remaining : count > ZERO_SIZE_BLOCK_MAX) {
          throw new RangeError('Avro block count exceeds the data');
        }
        for (let i = 0; i < count; i++) {
          if (type.typeName === 'map') s.text(s.long());
          scan(item, s, depth + 1);
        }
      }
    }
    default:
      throw new RangeError(`Avro type ${type.typeName} not supported by the scan`);
  }
}

/**
 * Throws a RangeError unless `buf` is exactly one well-bounded value of `type` (an avsc Type).
 * Passing does not mean the value is valid, only that decoding it costs O(bytes).
 */
export function assertAvroBounds(type: object, buf: Uint8Array): void {
  const s = new Scanner(buf);
  scan(type as ScanType, s, 0);
  if (s.remaining !== 0) throw new RangeError('trailing bytes after the Avro value');
}
