import type { Logger } from '@assurance/core';
import { AssuranceError, dispositionOf } from '@assurance/core';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { BatchHandler, ConsumerEvents, ConsumerOptions, ConsumerPort, InboundMessage } from './types.ts';

function toInbound(topic: string, partition: number, m: KafkaMessage): InboundMessage {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.map(String).join(',') : String(v);
  }
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ?? null,
    value: m.value ?? null,
    headers,
    timestampMs: Number(m.timestamp),
  };
}

/**
 * A consumer with the discipline the pipeline needs (issue: consumer discipline):
 * - eachBatch with manual offset resolution: the handler says how many leading messages are
 *   durable, and only those offsets are committed, after the handler returns;
 * - a transient failure mid-batch pauses the partition, seeks back to the first unfinished
 *   message and resumes after a backoff, so nothing is skipped and the consumer does not crash;
 * - partitions run concurrently, each one sequentially (per-key order holds).
 */
export function createConsumer(
  kafka: Kafka,
  opts: ConsumerOptions,
  logger: Logger,
  events: ConsumerEvents = {},
): ConsumerPort {
  const consumer: Consumer = kafka.consumer({
    groupId: opts.groupId,
    sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: 3000,
    maxBytesPerPartition: opts.maxBytesPerPartition ?? 1_048_576,
    allowAutoTopicCreation: false,
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 10_000 },
  });
  const log = logger.child({ component: 'consumer', groupId: opts.groupId });
  const timers = new Set<NodeJS.Timeout>();

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assigned = Object.entries(e.payload.memberAssignment).map(([topic, partitions]) => ({
      topic,
      partitions: [...partitions],
    }));
    log.info({ assigned, leader: e.payload.isLeader }, 'joined group');
    events.onGroupJoin?.(assigned);
  });
  consumer.on(consumer.events.CRASH, (e) => {
    log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    events.onCrash?.(e.payload.error, e.payload.restart);
  });

  return {
    async start(handler: BatchHandler) {
      await consumer.connect();
      await consumer.subscribe({ topics: [...opts.topics], fromBeginning: opts.fromBeginning ?? true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: opts.concurrency ?? 3,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }) => {
          if (batch.messages.length === 0) return;
          const { topic, partition } = batch;
          const messages = batch.messages.map((m) => toInbound(topic, partition, m));
          const live = () => isRunning() && !isStale();
          // Heartbeat while the handler works, so a slow batch (Redis or the broker struggling) does
          // not cost the group membership and trigger a rebalance storm.
          const beat = setInterval(() => void heartbeat().catch(() => {}), 3000);
          let result: Awaited<ReturnType<typeof handler>>;
          try {
            result = await handler(messages, { heartbeat, shouldContinue: live });
          } catch (err) {
            // Our own "stop" errors end the consumer for good: kafkajs would otherwise retry and
            // restart it forever, and the process would look healthy while deciding nothing.
            if (err instanceof AssuranceError && dispositionOf(err.code) === 'stop') {
              log.fatal({ err, topic, partition }, 'unrecoverable error; stopping');
              events.onCrash?.(err, false);
            }
            throw err;
          } finally {
            clearInterval(beat);
          }
          const done = Math.max(0, Math.min(result.processed, messages.length));
          if (done > 0) {
            const last = messages[done - 1] as InboundMessage;
            resolveOffset(last.offset);
            // A revoked partition's offsets belong to its new owner now; committing would be a lie.
            if (!isStale()) {
              await consumer.commitOffsets([
                { topic, partition, offset: (BigInt(last.offset) + 1n).toString() },
              ]);
            }
          }
          if (done < messages.length && live()) {
            const next = messages[done] as InboundMessage;
            const wait = result.retryAfterMs ?? 1000;
            log.warn(
              { topic, partition, offset: next.offset, wait, reason: result.reason },
              'pausing partition to retry',
            );
            const resume = pause();
            consumer.seek({ topic, partition, offset: next.offset });
            const t = setTimeout(() => {
              timers.delete(t);
              resume();
            }, wait);
            timers.add(t);
          }
          events.onBatchDone?.({ topic, partition, processed: done, lag: Number(batch.offsetLag()) });
        },
      });
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await consumer.disconnect();
    },
  };
}
