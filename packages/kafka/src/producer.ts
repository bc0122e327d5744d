import { AssuranceError } from '@assurance/core';
import type { Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { type KafkaClient, kafkajsOf } from './client.ts';
import { COMPRESSION_TYPE, type Compression } from './codecs.ts';
import type { Landed, OutboundMessage, ProducerPort } from './types.ts';

/**
 * Idempotent producer, acks from all in-sync replicas. Messages of one `send` are grouped per
 * topic into as few requests as the size limit allows, so a batch of decisions costs one or a few
 * round trips.
 */
export async function createProducer(
  kafka: KafkaClient,
  opts: { maxRequestBytes?: number; compression?: Compression; idempotent?: boolean } = {},
): Promise<ProducerPort> {
  const maxRequestBytes = opts.maxRequestBytes ?? 512 * 1024;
  const compression = COMPRESSION_TYPE[opts.compression ?? 'none'];
  const idempotent = opts.idempotent ?? true;
  const make = (): Producer =>
    kafkajsOf(kafka).producer({
      idempotent,
      maxInFlightRequests: 5,
      // Murmur2 like the Java client, so other producers keyed the same way land on the same partition.
      createPartitioner: Partitioners.DefaultPartitioner,
      // Idempotence only holds with unbounded retries: a send gives up only when the producer closes.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
    });
  let producer: Producer = make();
  await producer.connect();
  const partitions = new PartitionCounts(kafka);
  /**
   * A broker that crashed may come back without the sequence numbers of this producer's id (its
   * last writes were not on disk): every later send then fails as out of order, for good. That
   * producer id is dead, not the pipeline: a new producer takes over, and the send fails as
   * retriable, so the batch is redone (its work is idempotent; duplicates are harmless). One reset
   * at a time, however many sends see the error.
   */
  let resetting: Promise<void> | undefined;
  /** A replacement whose connect has not succeeded yet. */
  let unconnected: Producer | undefined;
  const reset = (dead: Producer): Promise<void> => {
    resetting ??= (async () => {
      if (producer !== dead) return;
      await dead.disconnect().catch(() => {});
      // Swapped in before it connects: a broker still away fails this connect, and the next send
      // connects it (or fails as retriable) instead of using the producer just closed.
      const fresh = make();
      producer = fresh;
      unconnected = fresh;
      await fresh.connect();
      unconnected = undefined;
    })().finally(() => {
      resetting = undefined;
    });
    return resetting;
  };
  const sendChunk = async (chunk: readonly OutboundMessage[]) => {
    // Partitions chosen here, as kafkajs would choose them, so the acknowledgement can be checked
    // for each (below).
    const placed = await partitions.place(chunk);
    const byTopic = new Map<string, Array<OutboundMessage & { partition: number }>>();
    for (const m of placed) {
      const list = byTopic.get(m.topic) ?? [];
      list.push(m);
      byTopic.set(m.topic, list);
    }
    const used = producer;
    let acked: AckedPartition[];
    try {
      if (used === unconnected) {
        await used.connect();
        if (unconnected === used) unconnected = undefined;
      }
      acked = await used.sendBatch({
        acks: -1,
        compression,
        topicMessages: [...byTopic].map(([topic, list]) => ({
          topic,
          messages: list.map((m) => ({
            key: m.key,
            value: m.value,
            partition: m.partition,
            ...(m.headers ? { headers: { ...m.headers } } : {}),
          })),
        })),
      });
    } catch (err) {
      const type = errorType(err);
      if (idempotent && type !== undefined && PRODUCER_ID_LOST.has(type)) {
        await reset(used).catch(() => {});
        throw new AssuranceError(
          'kafka_unavailable',
          `produce failed (${type}); the producer was replaced and the batch will be retried`,
          { cause: err },
        );
      }
      // Only what retrying cannot fix stops the engine (a record too large, no right to write):
      // anything else, a broker away however long included, is retried while the read path
      // reports the stall. kafkajs's own "non-retriable" also covers giving up on a connection.
      const retriable = !FATAL_PRODUCE.has(errorType(err) ?? '');
      throw new AssuranceError(
        retriable ? 'kafka_unavailable' : 'kafka_rejected',
        `produce failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    checkAcked(placed, acked);
    // A partition's messages of one request are appended in order from its base offset.
    const next = new Map(acked.map((a) => [`${a.topicName}|${a.partition}`, BigInt(a.baseOffset ?? '-1')]));
    return placed.map((m): Landed => {
      const k = `${m.topic}|${m.partition}`;
      const at = next.get(k) ?? -1n;
      next.set(k, at + 1n);
      return { partition: m.partition, offset: at.toString() };
    });
  };
  /**
   * kafkajs answers a send whose partitions moved to a broker that had already answered it with
   * success, having sent them nowhere (its retry skips brokers with a response): a leader that
   * dies in the middle of a send loses those messages silently. Every partition written to must
   * have its own acknowledgement, or the send failed.
   */
  const checkAcked = (
    placed: ReadonlyArray<{ topic: string; partition: number }>,
    acked: AckedPartition[],
  ) => {
    const got = new Set(acked.map((a) => `${a.topicName}|${a.partition}`));
    const missing = [...new Set(placed.map((m) => `${m.topic}|${m.partition}`))].filter((k) => !got.has(k));
    if (missing.length > 0) {
      throw new AssuranceError(
        'kafka_unavailable',
        `produce failed: ${missing.length} partition(s) were not acknowledged (${missing.slice(0, 3).join(', ')}): a leader moved during the send; the batch will be retried`,
      );
    }
  };
  const sendAll = async (messages: readonly OutboundMessage[]): Promise<Landed[]> => {
    // One request per ~maxRequestBytes, in order: a partition's record batch must stay under the
    // broker's message.max.bytes (1 MiB by default), and audit records are several KiB each.
    const offsets: Landed[] = [];
    let chunk: OutboundMessage[] = [];
    let bytes = 0;
    for (const m of messages) {
      const size = sizeOf(m);
      if (chunk.length > 0 && bytes + size > maxRequestBytes) {
        offsets.push(...(await sendChunk(chunk)));
        chunk = [];
        bytes = 0;
      }
      chunk.push(m);
      bytes += size;
    }
    if (chunk.length > 0) offsets.push(...(await sendChunk(chunk)));
    return offsets;
  };
  return {
    async send(messages: readonly OutboundMessage[]) {
      await sendAll(messages);
    },
    sendWithOffsets: sendAll,
    close: async () => {
      await resetting;
      await producer.disconnect();
    },
  };
}

/** Produce errors no retry can fix: the engine stops (kafka_rejected) and says why. */
const FATAL_PRODUCE = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
]);

/** The Kafka error code of an error or of what caused it (kafkajs wraps protocol errors). */
function errorType(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
  }
  return undefined;
}

/** Errors after which an idempotent producer's id is unusable, though the broker is fine. */
const PRODUCER_ID_LOST = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
]);

type AckedPartition = { topicName: string; partition: number; baseOffset?: string };

/**
 * Each topic's partition count (from the cluster's metadata, read again after a minute), and the
 * partition kafkajs's default partitioner (murmur2, as Java's) gives each message: keyed messages
 * land where any other producer would put them; unkeyed ones on a random partition.
 */
class PartitionCounts {
  readonly #kafka: KafkaClient;
  readonly #counts = new Map<string, { n: number; at: number }>();
  readonly #partitioner = Partitioners.DefaultPartitioner();
  /** One metadata read at a time, however many sends find the counts old. */
  #refreshing: Promise<void> | undefined;

  constructor(kafka: KafkaClient) {
    this.#kafka = kafka;
  }

  async place(chunk: readonly OutboundMessage[]): Promise<Array<OutboundMessage & { partition: number }>> {
    const topics = [...new Set(chunk.map((m) => m.topic))];
    const stale = topics.filter((t) => (this.#counts.get(t)?.at ?? 0) < Date.now() - 60_000);
    if (stale.length > 0) {
      this.#refreshing ??= this.#refresh(stale).finally(() => {
        this.#refreshing = undefined;
      });
      await this.#refreshing;
      // Another send's read may have covered other topics: read again for any still unknown.
      if (topics.some((t) => !this.#counts.has(t))) await this.#refresh(topics);
    }
    return chunk.map((m) => {
      const n = this.#counts.get(m.topic)?.n ?? 0;
      if (n === 0) throw new AssuranceError('kafka_unavailable', `no partitions known for ${m.topic}`);
      const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [],
        isr: [],
      }));
      const partition =
        m.key === null
          ? Math.floor(Math.random() * n)
          : this.#partitioner({ topic: m.topic, partitionMetadata, message: { key: m.key, value: m.value } });
      return { ...m, partition };
    });
  }

  async #refresh(topics: readonly string[]): Promise<void> {
    const admin = kafkajsOf(this.#kafka).admin();
    try {
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics: [...topics] });
      for (const t of meta.topics) this.#counts.set(t.name, { n: t.partitions.length, at: Date.now() });
    } catch (err) {
      // Counts read earlier stay good (partitions are only ever added), tried again in 5 s rather
      // than on every send; without any, fail the send.
      for (const t of topics) {
        const known = this.#counts.get(t);
        if (known) this.#counts.set(t, { n: known.n, at: Date.now() - 55_000 });
      }
      if (topics.some((t) => !this.#counts.has(t)))
        throw new AssuranceError(
          'kafka_unavailable',
          `cannot read topic metadata: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}

function sizeOf(m: OutboundMessage): number {
  const len = (v: string | Buffer | null) =>
    v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length;
  let headers = 0;
  for (const [k, v] of Object.entries(m.headers ?? {})) headers += k.length + Buffer.byteLength(v);
  // Per-record overhead (varints, attributes, offsets) is a few dozen bytes.
  return len(m.key) + len(m.value) + headers + 64;
}
