import { AssuranceError } from '@assurance/core';
import {
  ContractError,
  type DecodedMessage,
  decodeMessage,
  detectEncoding,
  readSchemaId,
  type ValueTopicName,
} from '@assurance/schemas';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';

/** Largest value we accept; anything bigger is dead-lettered unread. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** How long `register` retries a subject whose compatibility another process is still setting. */
export const REGISTER_RETRY_MS = 5000;

export interface RegistryCodecOptions {
  readonly url: string;
  readonly maxMessageBytes?: number;
  readonly timeoutMs?: number;
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
  readonly #writerSchemas = new Map<number, string>();

  constructor(opts: RegistryCodecOptions) {
    this.registry = new SchemaRegistry({
      host: opts.url,
      clientId: 'assurance',
      retry: { retries: 1, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 0.5 },
    });
    this.#max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /**
   * Decodes, validates and normalizes one message value of `topic` with the contract's own pure
   * functions (`decodeMessage` in @assurance/schemas): strict UTF-8, Avro resolved from the writer
   * schema to the contract's, zod last. Only the writer schema comes from here: fetched from the
   * registry once per id and kept, so a registry outage does not stop known ids.
   * @throws ContractError for anything the bytes can do wrong; AssuranceError(`registry_unavailable`)
   * when an unknown schema id cannot be looked up now (retry, never skip).
   */
  async decodeEvent<T extends ValueTopicName>(
    topic: T,
    buf: Buffer | null,
    /** The clock timestamps are bounded against (an `occurredAt` more than 24 h ahead is refused). */
    now?: Date,
  ): Promise<DecodedMessage<T>> {
    if (buf === null || buf.length === 0) throw new ContractError('empty_message', 'message has no value');
    if (buf.length > this.#max) {
      throw new ContractError('message_too_large', `value is ${buf.length} bytes; the limit is ${this.#max}`);
    }
    const writerSchema =
      detectEncoding(buf) === 'registry-avro' ? await this.#writerSchema(readSchemaId(buf)) : undefined;
    return decodeMessage(topic, buf, {
      maxBytes: this.#max,
      ...(writerSchema === undefined ? {} : { writerSchema }),
      ...(now === undefined ? {} : { now }),
    });
  }

  /** The writer schema registered under `id` as JSON text; undefined when the registry has no such id. */
  async #writerSchema(id: number): Promise<string | undefined> {
    const known = this.#writerSchemas.get(id);
    if (known !== undefined) return known;
    let type: { schema?: () => unknown };
    try {
      type = (await this.registry.getSchema(id)) as unknown as typeof type;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new AssuranceError(
        'registry_unavailable',
        `cannot fetch schema id ${id}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (typeof type.schema !== 'function') {
      throw new ContractError('invalid_avro', `schema id ${id} is not an Avro schema`);
    }
    const text = JSON.stringify(type.schema());
    // Ids come from message bytes: bound the cache so made-up ids cannot grow it without limit.
    if (this.#writerSchemas.size >= 1024) this.#writerSchemas.clear();
    this.#writerSchemas.set(id, text);
    return text;
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

  /**
   * Registers an Avro schema under a subject with BACKWARD compatibility; returns its id.
   *
   * A subject's first registration is two requests (the schema, then the subject's compatibility),
   * and the registry reports its default (NONE) between them. Engines that start together on a
   * fresh cluster each provision, so one may see a subject another is halfway through creating:
   * that is retried for a few seconds. A level someone really set otherwise still fails, with the
   * registry's own words.
   */
  async register(subject: string, avroSchema: object, retryMs = REGISTER_RETRY_MS): Promise<number> {
    const deadline = Date.now() + retryMs;
    for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
      try {
        const { id } = await this.registry.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(avroSchema) },
          { subject, compatibility: COMPATIBILITY.BACKWARD },
        );
        this.#latestIds.set(subject, id);
        return id;
      } catch (err) {
        // The library does not export its error classes; their names are set from the class.
        const mismatch = err instanceof Error && err.name === 'ConfluentSchemaRegistryCompatibilityError';
        if (!mismatch || Date.now() + wait > deadline) throw err;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}
