import { EventEmitter } from 'node:events';
import type { Logger } from '@assurance/core';
import type { ConsumerPort, ProducerPort } from '@assurance/kafka';
import {
  createAdmin,
  createConsumer,
  createKafka,
  createProducer,
  parseBrokers,
  RegistryCodec,
} from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import { loadPolicyFile } from '@assurance/policy';
import { channelRef, defineScripts, keySpace, SignalStore } from '@assurance/redis';
import { Redis } from 'ioredis';
import type { EngineConfig } from './config.ts';
import { Decider } from './decider.ts';
import { DeadLetterSink } from './dlq.ts';
import type { EngineMetrics } from './metrics.ts';
import { createEngineMetrics } from './metrics.ts';
import { provision } from './provision.ts';
import type { RoutedInfo } from './router.ts';
import { Router } from './router.ts';
import { Sweeper } from './sweeper.ts';
import type { TopicNames } from './topics.ts';
import { INPUT_ROLES, topicNames } from './topics.ts';

/** Instrumentation events: `routed` (RoutedInfo) once per input message durably handled. */
export interface EngineEvents {
  routed: [RoutedInfo];
}

export interface Engine {
  readonly events: EventEmitter<EngineEvents>;
  readonly policy: Policy;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly store: SignalStore;
  readonly redis: Redis;
  /** Resolves when the engine stops by itself (a consumer crashed for good): the process must exit. */
  readonly fatal: Promise<Error>;
  stop(): Promise<void>;
}

/**
 * Wires the pipeline: provisioning, the router (input topics → internal identity topic), the
 * decider (internal topic → decisions, audit, Redis) and the expiry sweeper. Nothing connects at
 * import time; this function is the only place that does.
 */
export async function startEngine(
  config: EngineConfig,
  logger: Logger,
  opts: { policy?: Policy } = {},
): Promise<Engine> {
  const policy = opts.policy ?? loadPolicyFile(config.POLICY_FILE);
  const topics = topicNames(config.TOPIC_NAMESPACE);
  const metrics = createEngineMetrics();
  logger.info(
    { policyVersion: policy.version, policyDigest: policy.digest, namespace: config.TOPIC_NAMESPACE },
    'starting engine',
  );

  const redis = new Redis(config.REDIS_URL, {
    enableAutoPipelining: true,
    // Fail fast while Redis is away: the consumer pauses and redelivers instead of piling up commands.
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    lazyConnect: true,
  });
  defineScripts(redis);
  await redis.connect();
  const store = new SignalStore(redis, keySpace(config.REDIS_PREFIX), {
    dedupeWindowMs: config.DEDUPE_WINDOW,
    stateTtlSeconds: Math.ceil(config.STATE_TTL / 1000),
    onScript: (script, seconds, ok) =>
      metrics.redisScript.observe({ script, result: ok ? 'ok' : 'error' }, seconds),
  });

  const kafka = createKafka({
    brokers: parseBrokers(config.KAFKA_BROKERS),
    clientId: config.CLIENT_ID,
    logger,
    maxDecompressedBytes: config.MAX_BATCH_DECOMPRESSED_BYTES,
  });
  const codec = new RegistryCodec({
    url: config.SCHEMA_REGISTRY_URL,
    maxMessageBytes: config.MAX_MESSAGE_BYTES,
  });
  const admin = await createAdmin(kafka);
  try {
    const p = await provision({ admin, codec, topics, internalPartitions: config.INTERNAL_PARTITIONS });
    logger.info({ created: p.created, subjects: Object.keys(p.subjects).length }, 'provisioned');
  } finally {
    await admin.close();
  }

  const producer: ProducerPort = await createProducer(kafka, { compression: config.PRODUCE_COMPRESSION });
  // Dead letters go through a producer of their own, not idempotent: a record the broker refuses
  // must not leave the pipeline's idempotent producer out of sequence (see dlq.ts).
  const dlqProducer: ProducerPort = await createProducer(kafka, {
    compression: config.PRODUCE_COMPRESSION,
    idempotent: false,
  });
  const deadLetters = new DeadLetterSink({
    producer: dlqProducer,
    recorder: store,
    onUnwritten: (code) => metrics.deadLettersUnwritten.inc({ error: code }),
    logger: logger.child({ component: 'dlq' }),
  });
  const hash = (kind: string, value: string) => channelRef(config.CHANNEL_HASH_SECRET, kind, value);
  const events = new EventEmitter<EngineEvents>();
  const failurePolicy = {
    retryBackoffMs: config.RETRY_BACKOFF,
    retryBudgetMs: config.RETRY_BUDGET,
    dlqMaxBytes: config.DLQ_MAX_BYTES,
    deadLetters,
  };
  const router = new Router({
    codec,
    producer,
    store,
    policy,
    hash,
    topics,
    metrics,
    logger: logger.child({ stage: 'router' }),
    ...failurePolicy,
    onRouted: (info) => events.emit('routed', info),
  });
  const decider = new Decider({
    store,
    producer,
    policy,
    topics,
    metrics,
    logger: logger.child({ stage: 'decider' }),
    ...failurePolicy,
  });

  let fail: (e: Error) => void = () => {};
  const fatal = new Promise<Error>((resolve) => {
    fail = resolve;
  });
  // Lag series per stage, so a partition this engine lost in a rebalance stops reporting a stale value.
  const lagSeries = new Map<string, Set<string>>();
  const consumerEvents = (stage: string) => ({
    onCrash: (error: Error, restarting: boolean) => {
      if (!restarting) fail(error);
    },
    onGroupJoin: (assigned: ReadonlyArray<{ topic: string; partitions: number[] }>) => {
      const keep = new Set(assigned.flatMap((a) => a.partitions.map((p) => `${a.topic}|${p}`)));
      for (const key of lagSeries.get(stage) ?? []) {
        if (keep.has(key)) continue;
        const [topic = '', partition = ''] = key.split('|');
        for (const gauge of [metrics.lag, metrics.progressOffset, metrics.progressTime]) {
          gauge.remove({ stage, topic, partition });
        }
      }
      lagSeries.set(stage, keep);
    },
    onBatchDone: (i: { topic: string; partition: number; lag: number; nextOffset: string }) => {
      lagSeries.get(stage)?.add(`${i.topic}|${i.partition}`);
      const labels = { stage, topic: i.topic, partition: String(i.partition) };
      const nowMs = Date.now();
      metrics.lag.set(labels, i.lag);
      metrics.progressOffset.set(labels, Number(i.nextOffset));
      metrics.progressTime.set(labels, nowMs / 1000);
      // Best effort: progress is for people and dashboards; the read path judges liveness from Kafka.
      void store.recordProgress(stage, i.topic, i.partition, i.nextOffset, nowMs).catch(() => {});
    },
  });
  const stages = new Set(config.ENGINE_STAGES);
  const consumerFor = (stage: 'router' | 'decider', topicList: string[]): ConsumerPort =>
    createConsumer(
      kafka,
      {
        groupId: `${config.ENGINE_GROUP_ID}.${stage}`,
        topics: topicList,
        concurrency: config.CONSUMER_CONCURRENCY,
        sessionTimeoutMs: config.CONSUMER_SESSION_TIMEOUT,
      },
      logger.child({ stage }),
      consumerEvents(stage),
    );
  const deciderConsumer = stages.has('decider') ? consumerFor('decider', [topics.identityEvents]) : undefined;
  const routerConsumer = stages.has('router')
    ? consumerFor(
        'router',
        INPUT_ROLES.map((r) => topics[r]),
      )
    : undefined;
  await deciderConsumer?.start((messages) => decider.handle(messages));
  await routerConsumer?.start((messages) => router.handle(messages));
  const sweeper = new Sweeper({
    store,
    producer,
    topics,
    metrics,
    logger: logger.child({ stage: 'sweeper' }),
    intervalMs: config.SWEEP_INTERVAL,
    leaseMs: config.SWEEP_LEASE,
  });
  if (stages.has('sweeper')) sweeper.start();
  logger.info({ stages: [...stages] }, 'engine running');

  let stopping: Promise<void> | undefined;
  return {
    events,
    policy,
    topics,
    metrics,
    store,
    redis,
    fatal,
    stop() {
      stopping ??= (async () => {
        logger.info('stopping engine: finishing batches in flight');
        // Each stage commits what it finished and leaves its group; what it did not finish is
        // redelivered, so the stages need not wait for each other.
        await Promise.all([sweeper.stop(), routerConsumer?.stop(), deciderConsumer?.stop()]);
        await Promise.all([producer.close(), dlqProducer.close()]);
        await redis.quit().catch(() => redis.disconnect());
        logger.info('engine stopped');
      })();
      return stopping;
    },
  };
}
