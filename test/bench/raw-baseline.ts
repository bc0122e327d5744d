/**
 * The ceiling: how fast plain kafkajs consumes the same input topics on this machine, doing nothing
 * with the messages. Everything else in the project talks to Kafka through packages/kafka; this file
 * imports kafkajs directly on purpose, because it measures kafkajs itself (no port, no decoding, no
 * manual offset discipline) — the one allowed exception.
 */
import { muteKafkajsNegativeTimeoutWarning } from '@assurance/kafka';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';

export interface RawResult {
  readonly messages: number;
  /** From `run()` to the first batch: group join and first fetch. */
  readonly joinMs: number;
  /** From the first batch to the last expected message. */
  readonly consumeMs: number;
}

export async function rawConsume(args: {
  brokers: string[];
  topics: string[];
  groupId: string;
  expected: number;
  /** Same as the router's consumer: partitions fetched and handled at once. */
  concurrency: number;
  onProgress?: (n: number) => void;
  timeoutMs?: number;
}): Promise<RawResult> {
  muteKafkajsNegativeTimeoutWarning();
  const kafka = new Kafka({ clientId: 'bench-raw', brokers: args.brokers, logLevel: logLevel.NOTHING });
  // Same fetch sizing as packages/kafka's consumer, so the comparison is about the work, not the fetch.
  const consumer = kafka.consumer({ groupId: args.groupId, maxBytesPerPartition: 1_048_576 });
  await consumer.connect();
  try {
    return await consumeUntil(consumer, args, async () => {}, 'raw consumer');
  } finally {
    await consumer.disconnect();
  }
}

/**
 * Runs a connected consumer over `topics` from the beginning, `handle` on each batch, until
 * `expected` messages went through it: the group join (to the first batch) and the time from the
 * first batch to the last, measured the same way for every baseline.
 */
export async function consumeUntil(
  consumer: Consumer,
  args: {
    topics: string[];
    expected: number;
    concurrency: number;
    onProgress?: (n: number) => void;
    timeoutMs?: number;
  },
  handle: (payload: EachBatchPayload) => Promise<void>,
  what: string,
  run: { autoCommit?: boolean } = {},
): Promise<RawResult> {
  await consumer.subscribe({ topics: args.topics, fromBeginning: true });
  let seen = 0;
  let firstAt = 0;
  let doneAt = 0;
  const started = performance.now();
  let finish: () => void = () => {};
  let fail: (err: unknown) => void = () => {};
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // A handler that throws makes kafkajs crash and restart the consumer on the same batch forever:
  // end the measurement with the error instead.
  consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
  await consumer.run({
    ...run,
    partitionsConsumedConcurrently: args.concurrency,
    eachBatch: async (payload) => {
      if (firstAt === 0) firstAt = performance.now();
      await handle(payload);
      seen += payload.batch.messages.length;
      args.onProgress?.(seen);
      if (seen >= args.expected && doneAt === 0) {
        doneAt = performance.now();
        finish();
      }
    },
  });
  const timeout = setTimeout(finish, args.timeoutMs ?? 600_000);
  try {
    await finished;
  } finally {
    clearTimeout(timeout);
  }
  if (doneAt === 0) throw new Error(`${what} saw ${seen} of ${args.expected} messages before the timeout`);
  return { messages: seen, joinMs: firstAt - started, consumeMs: doneAt - firstAt };
}
