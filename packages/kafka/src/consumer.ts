import type { Logger } from '@assurance/core';
import { AssuranceError, dispositionOf } from '@assurance/core';
import type { Consumer, KafkaMessage } from 'kafkajs';
import { type KafkaClient, kafkajsOf } from './client.ts';
import type { BatchHandler, ConsumerEvents, ConsumerOptions, ConsumerPort, InboundMessage } from './types.ts';

export function toInbound(topic: string, partition: number, m: KafkaMessage): InboundMessage {
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
/**
 * What a consumer gets for what its options leave out: the port's defaults, in one place. The
 * engine sets its own concurrency and session timeout from its configuration.
 */
/**
 * How old a consumer's cluster metadata may get before its next fetch reads it again (kafkajs's
 * default: 5 minutes). kafkajs fetches a partition only from the leader its metadata names; a
 * partition it last saw without one (its broker away) is left out of every fetch until the
 * metadata is read again, which errors usually bring about sooner. A bound, for the cases where
 * nothing does: one metadata request per consumer every 10 s.
 */
export const CONSUMER_METADATA_MAX_AGE_MS = 10_000;

export const CONSUMER_DEFAULTS = Object.freeze({
  fromBeginning: true,
  concurrency: 3,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3000,
  maxWaitTimeMs: 500,
  maxBytesPerPartition: 1_048_576,
});

/** How often a batch that has not finished is reported (a warning each time). */
const BATCH_WATCH_MS = 30_000;

export function createConsumer(
  kafka: KafkaClient,
  opts: ConsumerOptions,
  logger: Logger,
  events: ConsumerEvents = {},
): ConsumerPort {
  const log = logger.child({ component: 'consumer', groupId: opts.groupId });
  const timers = new Set<NodeJS.Timeout>();
  let consumer: Consumer;
  let stopping = false;
  let fatal = false;
  let handler: BatchHandler | undefined;
  /** What this member is assigned now. */
  let assignment: Array<{ topic: string; partitions: number[] }> = [];
  /**
   * Per partition, the answer of `resumeFrom` still to be honoured: a batch waits for it, and is
   * not processed if it begins past the offset to resume from.
   */
  const resuming = new Map<string, Promise<string | undefined>>();
  const partitionKey = (topic: string, partition: number) => `${topic}|${partition}`;

  /**
   * With `backgroundCommits`: offsets to commit, the newest per partition, sent one request at a
   * time in the background. An awaited commit after every batch keeps kafkajs from fetching again
   * until it returns: at 1 000 events/s over the input topics' partitions, events waited ~140 ms
   * for the router with the engine half idle (test/bench: "waiting for the engine"). Committing
   * later only ever means redelivery, which the pipeline absorbs, and an offset is queued only
   * after `beforeCommit` recorded it in the store, so Kafka is never ahead of what the store held.
   */
  const pendingCommits = new Map<string, { topic: string; partition: number; offset: string }>();
  let committing: Promise<void> | undefined;

  function queueCommit(c: Consumer, topic: string, partition: number, offset: string): void {
    // Queued offsets are kept through a resync: they were recorded in the store, and a store that
    // lost them must see Kafka ahead of it to replay them (StoreGuard flushes before comparing).
    pendingCommits.set(partitionKey(topic, partition), { topic, partition, offset });
    committing ??= drainCommits(c).finally(() => {
      committing = undefined;
    });
  }

  async function drainCommits(c: Consumer): Promise<void> {
    while (pendingCommits.size > 0) {
      const offsets = [...pendingCommits.values()];
      pendingCommits.clear();
      try {
        await c.commitOffsets(offsets);
      } catch (err) {
        // Left uncommitted: redelivered after a restart or a rebalance, unless a newer offset of
        // the same partition commits first.
        log.warn({ error: (err as Error).message, partitions: offsets.length }, 'offset commit failed');
      }
    }
  }

  /** Waits for every queued offset to be committed (or to have failed). */
  async function flushCommits(): Promise<void> {
    while (committing) await committing;
  }

  function askResume(c: Consumer): void {
    const ask = events.resumeFrom;
    if (!ask || assignment.length === 0) return;
    const answer = ask(assignment).catch((err: unknown) => {
      // Without an answer the partitions cannot be trusted: fail every batch until one arrives.
      log.warn({ error: (err as Error).message }, 'cannot tell where to resume; holding the partitions');
      throw err;
    });
    for (const a of assignment) {
      for (const partition of a.partitions) {
        const key = partitionKey(a.topic, partition);
        const mine = answer.then(
          (list) => list.find((r) => r.topic === a.topic && r.partition === partition)?.offset,
        );
        // Unhandled here on purpose only once: the batch that awaits it handles the rejection.
        mine.catch(() => {});
        resuming.set(key, mine);
      }
    }
    // Partitions with nothing new to fetch get no batch to check at: move them now.
    void answer
      .then((list) => {
        for (const r of list) {
          if (c !== consumer || stopping) return;
          log.warn(
            { topic: r.topic, partition: r.partition, offset: r.offset },
            'resuming partition from an earlier offset',
          );
          c.seek({ topic: r.topic, partition: r.partition, offset: r.offset });
        }
      })
      .catch(() => {});
  }

  function create(): Consumer {
    const c = kafkajsOf(kafka).consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs ?? CONSUMER_DEFAULTS.sessionTimeoutMs,
      heartbeatInterval: CONSUMER_DEFAULTS.heartbeatIntervalMs,
      // An idle fetch waits this long on the broker; a stop waits for it, so it bounds shutdown time.
      maxWaitTimeInMs: opts.maxWaitTimeMs ?? CONSUMER_DEFAULTS.maxWaitTimeMs,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? CONSUMER_DEFAULTS.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      metadataMaxAge: CONSUMER_METADATA_MAX_AGE_MS,
      retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    c.on(c.events.GROUP_JOIN, (e) => {
      const assigned = Object.entries(e.payload.memberAssignment).map(([topic, partitions]) => ({
        topic,
        partitions: [...partitions],
      }));
      log.info({ assigned, leader: e.payload.isLeader }, 'joined group');
      assignment = assigned;
      // Offsets queued for partitions this member no longer owns are its successor's to commit.
      const owned = new Set(assigned.flatMap((a) => a.partitions.map((p) => partitionKey(a.topic, p))));
      for (const key of pendingCommits.keys()) if (!owned.has(key)) pendingCommits.delete(key);
      resuming.clear();
      askResume(c);
      events.onGroupJoin?.(assigned);
    });
    c.on(c.events.CRASH, (e) => {
      const err = e.payload.error;
      if (e.payload.restart) {
        // kafkajs restarts the consumer itself after a retriable error (a coordinator still loading
        // after a broker start, say); only a restart that keeps failing deserves attention.
        log.debug({ err }, 'consumer restarting after a retriable error');
        return;
      }
      if (stopping || fatal) return;
      log.warn({ error: err.message }, 'consumer stopped by an error; starting a fresh one');
      // kafkajs gives up on group errors it calls non-retriable (an unknown member id after a broker
      // restart, say), though rejoining fixes them. Offsets are committed only after durable work,
      // so a fresh consumer resumes exactly where the last commit left off.
      const t = setTimeout(() => {
        timers.delete(t);
        void relaunch();
      }, 1000);
      timers.add(t);
    });
    return c;
  }

  async function relaunch(): Promise<void> {
    if (stopping || fatal || !handler) return;
    await consumer.disconnect().catch(() => {});
    try {
      await launch(handler);
    } catch (err) {
      log.warn({ error: (err as Error).message }, 'consumer restart failed; trying again');
      const t = setTimeout(() => {
        timers.delete(t);
        void relaunch();
      }, 2000);
      timers.add(t);
    }
  }

  async function launch(handle: BatchHandler): Promise<void> {
    // Closures below use this launch's own instance, never a later replacement.
    const c = create();
    consumer = c;
    await c.connect();
    await c.subscribe({
      topics: [...opts.topics],
      fromBeginning: opts.fromBeginning ?? CONSUMER_DEFAULTS.fromBeginning,
    });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: opts.concurrency ?? CONSUMER_DEFAULTS.concurrency,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }) => {
        if (batch.messages.length === 0) return;
        const { topic, partition } = batch;
        const first = batch.messages[0]?.offset as string;
        const pending = resuming.get(partitionKey(topic, partition));
        if (pending) {
          let target: string | undefined;
          try {
            target = await pending;
          } catch {
            const resume = pause();
            c.seek({ topic, partition, offset: first });
            const t = setTimeout(() => {
              timers.delete(t);
              resume();
              askResume(c);
            }, 1000);
            timers.add(t);
            return;
          }
          if (target !== undefined && BigInt(target) < BigInt(first)) {
            // Fetched before the move took effect: move it (again) and process nothing yet.
            c.seek({ topic, partition, offset: target });
            return;
          }
          resuming.delete(partitionKey(topic, partition));
        }
        const messages = batch.messages.map((m) => toInbound(topic, partition, m));
        const live = () => isRunning() && !isStale();
        // Heartbeat while the handler works, so a slow batch (Redis or the broker struggling) does
        // not cost the group membership and trigger a rebalance storm.
        // The heartbeats keep a stuck batch's partition with this member: the same timer says so
        // every BATCH_WATCH_MS, or the partition would stall without a word.
        const startedAt = Date.now();
        let reportAt = startedAt + BATCH_WATCH_MS;
        const beat = setInterval(() => {
          void heartbeat().catch(() => {});
          const now = Date.now();
          if (now < reportAt) return;
          reportAt = now + BATCH_WATCH_MS;
          log.warn(
            { topic, partition, first, messages: messages.length, runningMs: now - startedAt },
            'batch still running',
          );
        }, 3000);
        let result: Awaited<ReturnType<typeof handle>>;
        try {
          result = await handle(messages, { heartbeat, shouldContinue: live });
        } catch (err) {
          // Our own "stop" errors end the consumer for good: kafkajs would otherwise retry and
          // restart it forever, and the process would look healthy while deciding nothing.
          if (err instanceof AssuranceError && dispositionOf(err.code) === 'stop') {
            log.fatal({ err, topic, partition }, 'unrecoverable error; stopping');
            fatal = true;
            events.onCrash?.(err, false);
          }
          throw err;
        } finally {
          clearInterval(beat);
        }
        let done = Math.max(0, Math.min(result.processed, messages.length));
        if (done > 0) {
          const last = messages[done - 1] as InboundMessage;
          const nextOffset = (BigInt(last.offset) + 1n).toString();
          let recorded = true;
          try {
            await events.beforeCommit?.({ topic, partition, nextOffset });
          } catch (err) {
            // Not committed, so redelivered: the work is idempotent, and a commit ahead of what the
            // store recorded would read as data loss later.
            log.warn(
              { topic, partition, error: (err as Error).message },
              'progress not recorded; batch will be redelivered',
            );
            recorded = false;
            done = 0;
            result = {
              processed: 0,
              retryAfterMs: result.retryAfterMs ?? 1000,
              reason: 'progress_unrecorded',
            };
          }
          if (recorded) {
            resolveOffset(last.offset);
            // A revoked partition's offsets belong to its new owner now; committing would be a lie.
            if (!isStale()) {
              // While stopping, the last batches commit before the consumer stops taking commits.
              if (opts.backgroundCommits && !stopping) queueCommit(c, topic, partition, nextOffset);
              else await c.commitOffsets([{ topic, partition, offset: nextOffset }]);
            }
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
          c.seek({ topic, partition, offset: next.offset });
          const t = setTimeout(() => {
            timers.delete(t);
            resume();
          }, wait);
          timers.add(t);
        }
        log.debug(
          { topic, partition, first, last: messages.at(-1)?.offset, done, stale: isStale() },
          'batch done',
        );
        events.onBatchDone?.({
          topic,
          partition,
          processed: done,
          lag: Number(batch.offsetLag()),
          // The offset the partition resumes from: committed when done > 0, unchanged otherwise.
          nextOffset:
            done > 0
              ? (BigInt((messages[done - 1] as InboundMessage).offset) + 1n).toString()
              : (messages[0] as InboundMessage).offset,
        });
      },
    });
  }

  return {
    async start(h: BatchHandler) {
      handler = h;
      await launch(h);
    },
    resync() {
      resuming.clear();
      askResume(consumer);
    },
    flushCommits,
    async stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      // What was processed is committed before the group is left, so the next member starts
      // there: the queued offsets now, while the consumer still takes commits; a batch in flight
      // commits its own (stopping) before kafkajs's stop returns.
      await flushCommits();
      await consumer?.stop();
      await consumer?.disconnect();
    },
  };
}
