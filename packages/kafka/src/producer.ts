import { AssuranceError } from '@assurance/core';
import type { Kafka, Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { COMPRESSION_TYPE, type Compression } from './codecs.ts';
import type { OutboundMessage, ProducerPort } from './types.ts';

/**
 * Idempotent producer, acks from all in-sync replicas. Messages of one `send` are grouped per
 * topic into as few requests as the size limit allows, so a batch of decisions costs one or a few
 * round trips.
 */
export async function createProducer(
  kafka: Kafka,
  opts: { maxRequestBytes?: number; compression?: Compression; idempotent?: boolean } = {},
): Promise<ProducerPort> {
  const maxRequestBytes = opts.maxRequestBytes ?? 512 * 1024;
  const compression = COMPRESSION_TYPE[opts.compression ?? 'none'];
  const idempotent = opts.idempotent ?? true;
  const make = (): Producer =>
    kafka.producer({
      idempotent,
      maxInFlightRequests: 5,
      // Murmur2 like the Java client, so other producers keyed the same way land on the same partition.
      createPartitioner: Partitioners.DefaultPartitioner,
      // Idempotence only holds with unbounded retries: a send gives up only when the producer closes.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
    });
  let producer: Producer = make();
  await producer.connect();
  /**
   * A broker that crashed may come back without the sequence numbers of this producer's id (its
   * last writes were not on disk): every later send then fails as out of order, for good. That
   * producer id is dead, not the pipeline: a new producer takes over, and the send fails as
   * retriable, so the batch is redone (its work is idempotent; duplicates are harmless). One reset
   * at a time, however many sends see the error.
   */
  let resetting: Promise<void> | undefined;
  const reset = (dead: Producer): Promise<void> => {
    resetting ??= (async () => {
      if (producer !== dead) return;
      await dead.disconnect().catch(() => {});
      const fresh = make();
      await fresh.connect();
      producer = fresh;
    })().finally(() => {
      resetting = undefined;
    });
    return resetting;
  };
  const sendChunk = async (chunk: readonly OutboundMessage[]) => {
    const byTopic = new Map<string, OutboundMessage[]>();
    for (const m of chunk) {
      const list = byTopic.get(m.topic) ?? [];
      list.push(m);
      byTopic.set(m.topic, list);
    }
    const used = producer;
    try {
      await used.sendBatch({
        acks: -1,
        compression,
        topicMessages: [...byTopic].map(([topic, list]) => ({
          topic,
          messages: list.map((m) => ({
            key: m.key,
            value: m.value,
            ...(m.headers ? { headers: { ...m.headers } } : {}),
          })),
        })),
      });
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (idempotent && type !== undefined && PRODUCER_ID_LOST.has(type)) {
        await reset(used).catch(() => {});
        throw new AssuranceError(
          'kafka_unavailable',
          `produce failed (${type}); the producer was replaced and the batch will be retried`,
          { cause: err },
        );
      }
      // kafkajs marks what retrying cannot fix (a record too large): the process must restart, not
      // limp.
      const retriable = (err as { retriable?: boolean }).retriable !== false;
      throw new AssuranceError(
        retriable ? 'kafka_unavailable' : 'kafka_rejected',
        `produce failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  };
  return {
    async send(messages: readonly OutboundMessage[]) {
      // One request per ~maxRequestBytes, in order: a partition's record batch must stay under the
      // broker's message.max.bytes (1 MiB by default), and audit records are several KiB each.
      let chunk: OutboundMessage[] = [];
      let bytes = 0;
      for (const m of messages) {
        const size = sizeOf(m);
        if (chunk.length > 0 && bytes + size > maxRequestBytes) {
          await sendChunk(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(m);
        bytes += size;
      }
      if (chunk.length > 0) await sendChunk(chunk);
    },
    close: async () => {
      await resetting;
      await producer.disconnect();
    },
  };
}

/** Errors after which an idempotent producer's id is unusable, though the broker is fine. */
const PRODUCER_ID_LOST = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
]);

function sizeOf(m: OutboundMessage): number {
  const len = (v: string | Buffer | null) =>
    v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
  let headers = 0;
  for (const [k, v] of Object.entries(m.headers ?? {})) headers += k.length + Buffer.byteLength(v);
  // Per-record overhead (varints, attributes, offsets) is a few dozen bytes.
  return len(m.key) + len(m.value) + headers + 64;
}
