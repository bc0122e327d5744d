import { AssuranceError } from '@assurance/core';
import { assertAvroBounds } from '@assurance/schemas';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';

/** Largest value we accept; anything bigger is dead-lettered unread. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

export type Decoded =
  | { readonly encoding: 'registry-avro'; readonly schemaId: number; readonly value: unknown }
  | { readonly encoding: 'json'; readonly value: unknown };

export interface RegistryCodecOptions {
  readonly url: string;
  readonly maxMessageBytes?: number;
  readonly timeoutMs?: number;
}

/** Plain JSON data from what avsc decoded: records become objects, absent optionals (null) vanish. */
export function avroToPlain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(avroToPlain);
  if (Buffer.isBuffer(v)) return v;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = avroToPlain(x);
    return out;
  }
  return v;
}

function isNotFound(err: unknown): boolean {
  const e = err as { status?: number; message?: string } | undefined;
  if (e?.status === 404) return true;
  return /\b404\b|40403|not found/i.test(e?.message ?? '');
}

/**
 * Tells the Confluent wire format (magic 0x00, 4-byte schema id, Avro) from plain JSON per message.
 * Schemas fetched once stay cached by id, so a registry outage does not stop known ids; an id we
 * have never seen while the registry is down is a retriable error, never a skip.
 */
export class RegistryCodec {
  readonly registry: SchemaRegistry;
  readonly #max: number;
  readonly #latestIds = new Map<string, number>();

  constructor(opts: RegistryCodecOptions) {
    this.registry = new SchemaRegistry({
      host: opts.url,
      clientId: 'assurance',
      retry: { retries: 1, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 0.5 },
    });
    this.#max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  async decode(buf: Buffer | null): Promise<Decoded> {
    if (buf === null || buf.length === 0) throw new AssuranceError('empty_message', 'message has no value');
    if (buf.length > this.#max) {
      throw new AssuranceError(
        'message_too_large',
        `value is ${buf.length} bytes; the limit is ${this.#max}`,
      );
    }
    if (buf[0] === 0x00) {
      if (buf.length < 6) throw new AssuranceError('invalid_avro', 'wire-format header without payload');
      const schemaId = buf.readUInt32BE(1);
      let schema: { fromBuffer(b: Buffer): unknown };
      try {
        schema = (await this.registry.getSchema(schemaId)) as unknown as typeof schema;
      } catch (err) {
        if (isNotFound(err)) {
          throw new AssuranceError('unknown_schema_id', `schema id ${schemaId} is not in the registry`, {
            cause: err,
          });
        }
        throw new AssuranceError(
          'registry_unavailable',
          `cannot fetch schema id ${schemaId}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      try {
        // avsc trusts block counts: a few bytes claiming 2^31 items would stall the consumer.
        assertAvroBounds(schema, buf.subarray(5));
        return {
          encoding: 'registry-avro',
          schemaId,
          value: avroToPlain(schema.fromBuffer(buf.subarray(5))),
        };
      } catch (err) {
        throw new AssuranceError(
          'invalid_avro',
          `Avro payload does not match schema ${schemaId}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    const text = buf.toString('utf8');
    if (!/^\s*\{/.test(text)) {
      throw new AssuranceError(
        'unknown_encoding',
        'value is neither registry wire format (0x00) nor a JSON object',
      );
    }
    try {
      return { encoding: 'json', value: JSON.parse(text) as unknown };
    } catch (err) {
      throw new AssuranceError('invalid_json', `invalid JSON: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Encodes with the latest schema registered under `subject` (cached after the first call). */
  async encode(subject: string, value: unknown): Promise<Buffer> {
    let id = this.#latestIds.get(subject);
    if (id === undefined) {
      id = await this.registry.getLatestSchemaId(subject);
      this.#latestIds.set(subject, id);
    }
    return this.registry.encode(id, value);
  }

  /** Registers an Avro schema under a subject with BACKWARD compatibility; returns its id. */
  async register(subject: string, avroSchema: object): Promise<number> {
    const { id } = await this.registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(avroSchema) },
      { subject, compatibility: COMPATIBILITY.BACKWARD },
    );
    this.#latestIds.set(subject, id);
    return id;
  }
}
