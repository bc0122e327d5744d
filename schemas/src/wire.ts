import avro from 'avsc';
import { assertAvroBounds, InvalidUtf8Error } from './avro-guard.ts';
import { withNow } from './clock.ts';
import { ContractError, flattenIssues } from './contract-error.ts';
import { normalizeEmail, normalizePhone, normalizeSubjectValue } from './normalize.ts';
import { TOPICS, type TopicValue, type ValueTopicName } from './topics.ts';
import { SubjectType } from './vocabulary.ts';

/**
 * Pure decoding of Kafka message values (no network): tell the encodings apart, parse, validate and
 * normalize, check the key. The engine supplies the writer schema for a registry-encoded message
 * (it owns the registry client and its cache); everything else happens here.
 */

/** Largest message value accepted (64 KiB): an event is a few hundred bytes; anything near this is abuse. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** Confluent wire format: magic byte 0, then a 4-byte big-endian schema id, then the Avro payload. */
const MAGIC_BYTE = 0x00;
const HEADER_BYTES = 5;

/** How a message value is encoded. */
export type Encoding = 'registry-avro' | 'json' | 'unknown';

/**
 * Classifies a message value. Never throws. `registry-avro`: magic byte 0 and room for the schema id;
 * `json`: the first byte that is not JSON whitespace is `{` (a UTF-8 BOM is not whitespace). The two
 * cannot be confused because `{` is 0x7b, never 0x00.
 */
export function detectEncoding(buf: Uint8Array): Encoding {
  if (buf.length >= HEADER_BYTES && buf[0] === MAGIC_BYTE) return 'registry-avro';
  for (const byte of buf) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x7b ? 'json' : 'unknown';
  }
  return 'unknown';
}

/** The registry schema id of a wire-format message; ContractError(`unknown_encoding`) if it is not one. */
export function readSchemaId(buf: Uint8Array): number {
  if (detectEncoding(buf) !== 'registry-avro') {
    throw new ContractError(
      'unknown_encoding',
      'not in registry wire format (magic byte 0 + 4-byte schema id)',
    );
  }
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readUInt32BE(1);
}

function checkSize(buf: Uint8Array, maxBytes: number): void {
  if (buf.length === 0) throw new ContractError('empty_message', 'message value is empty');
  if (buf.length > maxBytes) {
    throw new ContractError('message_too_large', `message value is ${buf.length} bytes, limit ${maxBytes}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes bytes as strict UTF-8: invalid sequences are refused, never replaced (two ids that differ
 * only in invalid bytes must not become one). Throws ContractError(`invalid_utf8`).
 */
export function strictUtf8(buf: Uint8Array, what: string): string {
  try {
    return utf8.decode(buf);
  } catch (cause) {
    throw new ContractError('invalid_utf8', `${what} is not valid UTF-8`, { cause });
  }
}

/** True when every string in a parsed JSON value (keys too) is well-formed Unicode. */
function wellFormed(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.isWellFormed();
  if (typeof value !== 'object' || value === null || depth > 64) return true;
  if (Array.isArray(value)) return value.every((v) => wellFormed(v, depth + 1));
  return Object.entries(value).every(([k, v]) => k.isWellFormed() && wellFormed(v, depth + 1));
}

/**
 * Parses a JSON message value into a plain object. Throws ContractError: `empty_message`,
 * `message_too_large`, `invalid_utf8` (bytes that are not UTF-8, or a `\ud800`-style escape of a
 * lone surrogate, which no UTF-8 text can carry), or `invalid_json` (bad JSON, or a top level that
 * is not an object). Error messages never quote the input: it may hold phone numbers.
 */
export function parseJsonValue(buf: Uint8Array, maxBytes = MAX_MESSAGE_BYTES): Record<string, unknown> {
  checkSize(buf, maxBytes);
  const text = strictUtf8(buf, 'message value');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not even as the cause: the parser's text quotes the input, and a logged error may print it.
    throw new ContractError('invalid_json', 'message value is malformed JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ContractError('invalid_json', 'message value must be a JSON object');
  }
  if (!wellFormed(parsed)) {
    throw new ContractError('invalid_utf8', 'message value escapes a lone surrogate (not valid Unicode)');
  }
  return parsed as Record<string, unknown>;
}

function valueSpec(topic: ValueTopicName) {
  const spec = TOPICS[topic] as (typeof TOPICS)[ValueTopicName] | undefined;
  if (!spec?.value) throw new RangeError(`not a v1 topic with a value schema: ${String(topic)}`);
  return spec;
}

/**
 * Validates and normalizes a parsed value against its topic's schema. `now` pins the clock for the
 * "not more than 24h in the future" bound (tests, replays). Throws ContractError(`validation_failed`)
 * with the flattened issues; a topic outside the catalog is a programming error (RangeError).
 */
export function validateEvent<T extends ValueTopicName>(
  topic: T,
  value: unknown,
  opts: { now?: Date } = {},
): TopicValue<T> {
  const schema = valueSpec(topic).value;
  const parse = () => schema.safeParse(value);
  const result = opts.now ? withNow(opts.now, parse) : parse();
  if (result.success) return result.data as TopicValue<T>;
  const issues = flattenIssues(result.error.issues);
  throw new ContractError('validation_failed', `invalid ${topic} value: ${issues.slice(0, 3).join('; ')}`, {
    issues,
    cause: result.error,
  });
}

type AvroType = ReturnType<typeof avro.Type.forSchema>;
const readerTypes = new Map<ValueTopicName, AvroType>();
/** Resolvers per (topic, writer schema); bounded because writer schemas come from outside. */
const resolvers = new Map<
  string,
  { writer: AvroType; resolver: unknown } | { writer: AvroType; same: true }
>();
const RESOLVER_CACHE_MAX = 256;

function readerType(topic: ValueTopicName): AvroType {
  let type = readerTypes.get(topic);
  if (!type) {
    type = avro.Type.forSchema(valueSpec(topic).avro as avro.Schema);
    readerTypes.set(topic, type);
  }
  return type;
}

/** A writer schema as the registry returns it: the schema JSON text or its parsed form. */
export type WriterSchema = string | object;

function resolverFor(topic: ValueTopicName, writerSchema: WriterSchema) {
  const text = typeof writerSchema === 'string' ? writerSchema : JSON.stringify(writerSchema);
  const cacheKey = `${topic}\n${text}`;
  let entry = resolvers.get(cacheKey);
  if (!entry) {
    const reader = readerType(topic);
    try {
      const writer = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
      entry = writer.equals(reader)
        ? { writer, same: true }
        : { writer, resolver: reader.createResolver(writer) };
    } catch (cause) {
      throw new ContractError('invalid_avro', `writer schema cannot be read as ${topic}`, { cause });
    }
    if (resolvers.size >= RESOLVER_CACHE_MAX) resolvers.clear();
    resolvers.set(cacheKey, entry);
  }
  return entry;
}

/**
 * Decodes an Avro payload (the bytes after the 5-byte header) written with `writerSchema` into the
 * plain value zod expects (resolving writer → reader schema, so BACKWARD-compatible writers work).
 * Throws ContractError(`invalid_avro`).
 */
export function decodeAvroPayload(
  topic: ValueTopicName,
  payload: Uint8Array,
  writerSchema: WriterSchema,
): unknown {
  const entry = resolverFor(topic, writerSchema);
  const reader = readerType(topic);
  try {
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    assertAvroBounds(entry.writer, buf); // avsc trusts block counts; see avro-guard.ts
    const decoded =
      'same' in entry ? reader.fromBuffer(buf) : reader.fromBuffer(buf, entry.resolver as never);
    return valueSpec(topic).avroCodec.fromAvro(decoded);
  } catch (cause) {
    if (cause instanceof InvalidUtf8Error) {
      throw new ContractError('invalid_utf8', `${topic} Avro payload has a string that is not UTF-8`, {
        cause,
      });
    }
    // Without the decoder's error as cause: it may quote the values it read.
    throw new ContractError('invalid_avro', `payload does not decode as ${topic}`);
  }
}

/**
 * Encodes a value in registry wire format with this contract's Avro schema, registered as `schemaId`.
 * For producers and tests; throws ContractError(`invalid_avro`) if the value does not fit the schema.
 */
export function encodeRegistryAvro(topic: ValueTopicName, value: unknown, schemaId: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(MAGIC_BYTE, 0);
  header.writeUInt32BE(schemaId, 1);
  try {
    return Buffer.concat([header, readerType(topic).toBuffer(valueSpec(topic).avroCodec.toAvro(value))]);
  } catch (cause) {
    throw new ContractError('invalid_avro', `value does not fit the ${topic} Avro schema`, { cause });
  }
}

/** Options for {@link decodeMessage}. */
export interface DecodeOptions {
  now?: Date;
  /** Schema registered under the message's schema id, looked up by the caller; absent = unknown id. */
  writerSchema?: WriterSchema;
  maxBytes?: number;
}

/** A decoded, validated, normalized message value. */
export interface DecodedMessage<T extends ValueTopicName> {
  encoding: 'json' | 'registry-avro';
  schemaId: number | null;
  value: TopicValue<T>;
}

/**
 * Size check → encoding → parse (JSON or Avro) → validate and normalize. Throws only ContractError
 * for anything the bytes can do; the engine dead-letters on every code (docs/dead-letters.md).
 */
export function decodeMessage<T extends ValueTopicName>(
  topic: T,
  buf: Uint8Array,
  opts: DecodeOptions = {},
): DecodedMessage<T> {
  const maxBytes = opts.maxBytes ?? MAX_MESSAGE_BYTES;
  checkSize(buf, maxBytes);
  const validateOpts = opts.now ? { now: opts.now } : {};
  switch (detectEncoding(buf)) {
    case 'json':
      return {
        encoding: 'json',
        schemaId: null,
        value: validateEvent(topic, parseJsonValue(buf, maxBytes), validateOpts),
      };
    case 'registry-avro': {
      const schemaId = readSchemaId(buf);
      if (opts.writerSchema === undefined) {
        throw new ContractError('unknown_schema_id', `schema id ${schemaId} is not known to the registry`);
      }
      const plain = decodeAvroPayload(topic, buf.subarray(HEADER_BYTES), opts.writerSchema);
      return { encoding: 'registry-avro', schemaId, value: validateEvent(topic, plain, validateOpts) };
    }
    case 'unknown':
      throw new ContractError('unknown_encoding', 'message value is neither JSON nor registry wire format');
  }
}

/**
 * The Kafka key a producer must use for `event` (normalized):
 * - login, device, channel-binding, decisions, audit: `identityId`, exactly;
 * - sim-swap: `phoneNumber` in E.164; mailbox-change: `mailbox`, lower-case;
 * - compromise-signal: `<subject.type>:<subject.value>`, e.g. `phone:+4915112345678`.
 */
export function keyFor<T extends ValueTopicName>(topic: T, event: TopicValue<T>): string {
  const e = event as {
    identityId?: string;
    phoneNumber?: string;
    mailbox?: string;
    subject?: { type: string; value: string };
  };
  switch (valueSpec(topic).key) {
    case 'identityId':
      return String(e.identityId);
    case 'phone':
      return String(e.phoneNumber);
    case 'mailbox':
      return String(e.mailbox);
    case 'subject':
      return `${e.subject?.type}:${e.subject?.value}`;
  }
}

/** Normalizes a received key with the rules that normalized the value; null if it cannot be. */
function normalizeKey(topic: ValueTopicName, key: string): string | null {
  switch (valueSpec(topic).key) {
    case 'identityId':
      return key;
    case 'phone': {
      const r = normalizePhone(key);
      return r.ok ? r.value : null;
    }
    case 'mailbox': {
      const r = normalizeEmail(key);
      return r.ok ? r.value : null;
    }
    case 'subject': {
      const sep = key.indexOf(':');
      const type = SubjectType.safeParse(key.slice(0, sep));
      if (sep < 0 || !type.success) return null;
      const r = normalizeSubjectValue(type.data, key.slice(sep + 1));
      return r.ok ? `${type.data}:${r.value}` : null;
    }
  }
}

/**
 * Whether a received Kafka key agrees with the value. The key is normalized first, so a producer
 * that keyed by `+49 151 ...` while sending the same number in the value still agrees; partitioning
 * by an unnormalized key only costs ordering, not correctness.
 */
export function keyMatches<T extends ValueTopicName>(
  topic: T,
  key: Uint8Array | string | null | undefined,
  event: TopicValue<T>,
): boolean {
  if (key === null || key === undefined) return false;
  const text = typeof key === 'string' ? key : Buffer.from(key).toString('utf8');
  return normalizeKey(topic, text) === keyFor(topic, event);
}

/** Throws ContractError(`key_mismatch`) unless {@link keyMatches}. */
export function assertKeyMatches<T extends ValueTopicName>(
  topic: T,
  key: Uint8Array | string | null | undefined,
  event: TopicValue<T>,
): void {
  if (keyMatches(topic, key, event)) return;
  const expected = valueSpec(topic).keyDescription;
  const why = key === null || key === undefined ? 'message has no key' : 'key does not match the value';
  throw new ContractError('key_mismatch', `${topic}: ${why}; expected ${expected}`);
}
