import { randomUUID } from 'node:crypto';
import type { Logger } from '@assurance/core';
import type { Consumer } from 'kafkajs';
import { type KafkaClient, kafkajsOf } from './client.ts';
import { CONSUMER_METADATA_MAX_AGE_MS, toInbound } from './consumer.ts';
import type { InboundMessage } from './types.ts';

export interface TopicTail {
  /** Resolves once every partition has reached the end it had when the tail started. */
  readonly caughtUp: Promise<void>;
  /** True while the consumer runs (false after a crash it is recovering from, or once stopped). */
  readonly running: boolean;
  stop(): Promise<void>;
}

export interface TailOptions {
  /** Records read back per partition before following new ones (0: only new ones). */
  readonly lookback: number;
  /** The throwaway group's name starts with this (where ACLs grant groups by prefix, the caller's). */
  readonly groupIdPrefix: string;
  readonly logger: Logger;
}

/**
 * Follows a topic for a reader that keeps nothing between runs (a view of recent records): the
 * last `lookback` records of each partition, then every new one, in partition order, never
 * committing. Its consumer group is its own (a throwaway, deleted at stop), so every process gets
 * every record. After a crash or a rebalance it goes on from the record after the last one it
 * delivered, never delivering one twice or skipping one the broker still holds.
 */
export async function tailTopic(
  kafka: KafkaClient,
  topic: string,
  onBatch: (messages: readonly InboundMessage[]) => void,
  opts: TailOptions,
): Promise<TopicTail> {
  const log = opts.logger.child({ component: 'tail', topic });
  const admin = kafkajsOf(kafka).admin();
  await admin.connect();
  /** Per partition, the next offset to deliver. */
  const next = new Map<number, bigint>();
  const ends = new Map<number, bigint>();
  try {
    for (const p of await admin.fetchTopicOffsets(topic)) {
      const [low, high] = [BigInt(p.low), BigInt(p.high)];
      const from = high - BigInt(opts.lookback);
      next.set(p.partition, from > low ? from : low);
      if (high > low && high > (next.get(p.partition) as bigint)) ends.set(p.partition, high);
    }
  } catch (err) {
    await admin.disconnect();
    throw err;
  }
  const groupId = `${opts.groupIdPrefix}-${randomUUID()}`;
  let markCaughtUp: () => void = () => {};
  const caughtUp = new Promise<void>((resolve) => {
    markCaughtUp = resolve;
  });
  const reached = (partition: number, nextOffset: bigint) => {
    const end = ends.get(partition);
    if (end !== undefined && nextOffset >= end) ends.delete(partition);
    if (ends.size === 0) markCaughtUp();
  };
  reached(-1, 0n);

  let consumer: Consumer | undefined;
  let running = false;
  let stopped = false;
  let relaunchTimer: NodeJS.Timeout | undefined;

  const launch = async (): Promise<void> => {
    const c = kafkajsOf(kafka).consumer({
      groupId,
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
      metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
      retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    consumer = c;
    c.on(c.events.GROUP_JOIN, (e) => {
      // Each assigned partition goes on where this tail left it (a fresh group would start at the
      // beginning of the log).
      for (const partition of e.payload.memberAssignment[topic] ?? []) {
        const at = next.get(partition);
        if (at !== undefined) c.seek({ topic, partition, offset: at.toString() });
      }
      running = true;
    });
    c.on(c.events.CRASH, (e) => {
      running = false;
      if (e.payload.restart || stopped) return;
      log.warn({ error: e.payload.error.message }, 'tail stopped by an error; starting a fresh one');
      relaunchTimer = setTimeout(() => void relaunch(), 2000);
    });
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatch: async ({ batch, isStale }) => {
        if (isStale()) return;
        const at = next.get(batch.partition) ?? 0n;
        const fresh = batch.messages.filter((m) => BigInt(m.offset) >= at);
        if (fresh.length > 0) {
          next.set(batch.partition, BigInt((fresh.at(-1) as { offset: string }).offset) + 1n);
          try {
            onBatch(fresh.map((m) => toInbound(batch.topic, batch.partition, m)));
          } catch (err) {
            // The reader's fault, not the topic's: the records are delivered, and following goes on.
            log.error({ err }, 'tail reader failed on a batch');
          }
        }
        // Compaction leaves gaps: the end is reached when the batch's last offset is past it.
        reached(batch.partition, BigInt(batch.lastOffset()) + 1n);
      },
    });
  };
  const relaunch = async (): Promise<void> => {
    if (stopped) return;
    await consumer?.disconnect().catch(() => {});
    try {
      await launch();
    } catch (err) {
      if (stopped) return;
      log.warn({ error: (err as Error).message }, 'tail restart failed; trying again');
      relaunchTimer = setTimeout(() => void relaunch(), 2000);
    }
  };
  try {
    await launch();
  } catch (err) {
    await consumer?.disconnect().catch(() => {});
    await admin.disconnect();
    throw err;
  }
  return {
    caughtUp,
    get running() {
      return running && !stopped;
    },
    async stop() {
      stopped = true;
      running = false;
      if (relaunchTimer) clearTimeout(relaunchTimer);
      await consumer?.disconnect().catch(() => {});
      await admin.deleteGroups([groupId]).catch(() => {});
      await admin.disconnect();
    },
  };
}
