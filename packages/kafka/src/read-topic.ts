import { randomUUID } from 'node:crypto';
import { type KafkaClient, kafkajsOf } from './client.ts';
import { CONSUMER_METADATA_MAX_AGE_MS, toInbound } from './consumer.ts';
import type { InboundMessage } from './types.ts';

/**
 * Reads a topic from its first retained record up to the end it has when the call starts, and
 * returns. For recovery work (reading back the decisions topic when a store was lost), not for the
 * pipeline: it uses a throwaway consumer group, deleted afterwards, and commits nothing.
 */
export async function readTopicToEnd(
  kafka: KafkaClient,
  topic: string,
  onBatch: (messages: readonly InboundMessage[]) => Promise<void> | void,
  opts: {
    readonly idleTimeoutMs?: number;
    /** The throwaway group's name starts with this: where ACLs grant groups by prefix, the caller's. */
    readonly groupIdPrefix?: string;
  } = {},
): Promise<{ messages: number }> {
  const admin = kafkajsOf(kafka).admin();
  await admin.connect();
  const groupId = `${opts.groupIdPrefix ?? 'assurance-read'}-${randomUUID()}`;
  try {
    const ends = new Map<number, bigint>();
    for (const p of await admin.fetchTopicOffsets(topic)) {
      if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high));
    }
    if (ends.size === 0) return { messages: 0 };
    const consumer = kafkajsOf(kafka).consumer({
      groupId,
      maxWaitTimeInMs: 200,
      allowAutoTopicCreation: false,
      metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
    });
    let count = 0;
    let finish: () => void = () => {};
    let fail: (err: Error) => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) fail(e.payload.error);
    });
    // A partition whose end can never be reached (its last offsets hold no records) must not hang
    // the caller: nothing arriving for this long is an error the caller reports.
    const idleMs = opts.idleTimeoutMs ?? 30_000;
    let idle = setTimeout(
      () => fail(new Error(`reading ${topic}: nothing arrived for ${idleMs} ms`)),
      idleMs,
    );
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          clearTimeout(idle);
          idle = setTimeout(
            () => fail(new Error(`reading ${topic}: nothing arrived for ${idleMs} ms`)),
            idleMs,
          );
          const end = ends.get(batch.partition);
          if (end === undefined) return;
          const wanted = batch.messages.filter((m) => BigInt(m.offset) < end);
          if (wanted.length > 0) {
            await onBatch(wanted.map((m) => toInbound(batch.topic, batch.partition, m)));
            count += wanted.length;
          }
          // Compaction leaves gaps, so the end is reached when the batch's last offset is past it.
          const last = BigInt(batch.lastOffset());
          if (last + 1n >= end) {
            ends.delete(batch.partition);
            if (ends.size === 0) finish();
          }
        },
      });
      await done;
    } finally {
      clearTimeout(idle);
      await consumer.disconnect();
    }
    return { messages: count };
  } finally {
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect();
  }
}
