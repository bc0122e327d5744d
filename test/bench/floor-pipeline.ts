/**
 * The floor: the least a pipeline shaped like ours must do per event, on the same input topics and
 * partitions: consume, run one small Redis script per event (write a hash under the message key,
 * set its expiry; pipelined), produce one ~200-byte record per event (idempotent producer, acks
 * from all replicas, as the engine's), commit offsets after the produce. No decoding, no state
 * model, no policy: engine/floor says how much of the engine's cost is ours to remove.
 *
 * Like raw-baseline.ts it imports kafkajs directly, because it measures kafkajs itself.
 */
import { muteKafkajsNegativeTimeoutWarning } from '@assurance/kafka';
import type { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { consumeUntil } from './raw-baseline.ts';

/** Records per produce request: ~200 bytes each, so about 400 KiB. */
const SEND_RECORDS = 2000;

export interface FloorResult {
  readonly messages: number;
  readonly joinMs: number;
  /** From the first batch to the last expected message produced and its offset committed. */
  readonly consumeMs: number;
  readonly outputBytes: number;
}

const FLOOR_SCRIPT = `
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1`;

export async function floorPipeline(args: {
  brokers: string[];
  topics: string[];
  /** Created here (as many partitions as the input's largest topic) and deleted at the end. */
  outputTopic: string;
  partitions: number;
  groupId: string;
  redis: Redis;
  keyPrefix: string;
  expected: number;
  concurrency: number;
  onProgress?: (n: number) => void;
  timeoutMs?: number;
}): Promise<FloorResult> {
  muteKafkajsNegativeTimeoutWarning();
  const kafka = new Kafka({ clientId: 'bench-floor', brokers: args.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic: args.outputTopic, numPartitions: args.partitions }],
    waitForLeaders: true,
  });
  args.redis.defineCommand('benchFloor', { numberOfKeys: 1, lua: FLOOR_SCRIPT });
  const floor = (args.redis as unknown as { benchFloor(k: string, n: number, at: number): Promise<number> })
    .benchFloor;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  const consumer = kafka.consumer({ groupId: args.groupId, maxBytesPerPartition: 1_048_576 });
  await producer.connect();
  await consumer.connect();
  // Every output record is one of these, padded to ~200 bytes like a small decision reference.
  const pad = 'x'.repeat(120);
  let outputBytes = 0;
  try {
    const r = await consumeUntil(
      consumer,
      args,
      async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
        const now = Date.now();
        await Promise.all(
          batch.messages.map((m) =>
            floor.call(
              args.redis,
              `${args.keyPrefix}{f:${m.key?.toString('utf8') ?? ''}}`,
              m.value?.length ?? 0,
              now,
            ),
          ),
        );
        const records = batch.messages.map((m) => {
          const value = JSON.stringify({ k: m.key?.toString('utf8') ?? '', o: m.offset, at: now, pad });
          outputBytes += value.length;
          return { key: m.key, value };
        });
        // In requests of at most ~512 KiB, as the engine's producer port sends (a fetched batch can
        // hold more than the broker takes in one record batch).
        for (let i = 0; i < records.length; i += SEND_RECORDS)
          await producer.send({
            topic: args.outputTopic,
            acks: -1,
            messages: records.slice(i, i + SEND_RECORDS),
          });
        const last = batch.messages.at(-1);
        if (last) resolveOffset(last.offset);
        await commitOffsetsIfNecessary({
          topics: [
            {
              topic: batch.topic,
              partitions: [{ partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }],
            },
          ],
        });
      },
      'floor pipeline',
      { autoCommit: false },
    );
    return { ...r, outputBytes };
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [args.outputTopic] }).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}
