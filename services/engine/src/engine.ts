import { EventEmitter } from 'node:events';
import type { Logger } from '@assurance/core';
import type { ConsumerPort, ProducerPort } from '@assurance/kafka';
import {
  createAdmin,
  createConsumer,
  createKafka,
  createProducer,
  parseBrokers,
  provision,
  RegistryCodec,
} from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import { loadPolicyFile } from '@assurance/policy';
import {
  createRedis,
  keySpace,
  MetaStore,
  type RedisConnection,
  StateStore,
  secretDigest,
} from '@assurance/redis';
import { channelRef, engineStageGroups, type TopicNames, topicNames } from '@assurance/schemas';
import type { EngineConfig } from './config.ts';
import { Decider } from './decider.ts';
import { DeadLetterSink } from './dlq.ts';
import type { EngineMetrics } from './metrics.ts';
import { createEngineMetrics } from './metrics.ts';

import { recoverLostStore, seedFromDecisions } from './recovery.ts';
import type { RoutedInfo } from './router.ts';
import { Router } from './router.ts';
import { StoreGuard } from './store-guard.ts';
import { Sweeper } from './sweeper.ts';

/** Instrumentation events: `routed` (RoutedInfo) once per input message durably handled. */
export interface EngineEvents {
  routed: [RoutedInfo];
}

export interface Engine {
  readonly events: EventEmitter<EngineEvents>;
  readonly policy: Policy;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly store: StateStore;
  readonly meta: MetaStore;
  readonly guard: StoreGuard;
  readonly redis: RedisConnection;
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

  const redis = createRedis(config.REDIS_URL, { kind: 'engine' });
  await redis.connect();
  const keys = keySpace(config.REDIS_PREFIX);
  const store = new StateStore(redis, keys, {
    keepMs: config.LATE_EVENT_WINDOW,
    stateTtlMs: config.STATE_TTL,
    onScript: (script, seconds, ok) =>
      metrics.redisScript.observe({ script, result: ok ? 'ok' : 'error' }, seconds),
  });
  const meta = new MetaStore(redis, keys);

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
  // Kept open: the store guard compares Kafka's committed offsets with Redis's progress.
  const admin = await createAdmin(kafka);
  try {
    const p = await provision({ admin, codec, topics, internalPartitions: config.INTERNAL_PARTITIONS });
    logger.info({ created: p.created, subjects: Object.keys(p.subjects).length }, 'provisioned');
  } catch (err) {
    await admin.close();
    throw err;
  }

  const stageGroups = engineStageGroups(config.ENGINE_GROUP_ID, topics);
  const recoveryDeps = {
    kafka,
    decisionsTopic: topics.decisions,
    state: store,
    meta,
    prefix: config.REDIS_PREFIX,
    secretDigest: secretDigest(config.CHANNEL_HASH_SECRET),
    policyDigest: policy.digest,
    metrics,
    logger: logger.child({ component: 'recovery' }),
  };
  let fail: (e: Error) => void = () => {};
  const fatal = new Promise<Error>((resolve) => {
    fail = resolve;
  });
  const consumers: ConsumerPort[] = [];
  const guard = new StoreGuard({
    redis,
    meta,
    admin,
    stages: stageGroups,
    prefix: config.REDIS_PREFIX,
    secretDigest: recoveryDeps.secretDigest,
    policyDigest: policy.digest,
    recoverLost: (markFirst) => recoverLostStore(recoveryDeps, markFirst),
    seed: async () => {
      await seedFromDecisions(recoveryDeps);
    },
    onResync: () => {
      for (const c of consumers) c.resync();
    },
    flushCommits: async () => {
      await Promise.all(consumers.map((c) => c.flushCommits()));
    },
    onFatal: (err) => {
      logger.fatal({ code: err.code }, err.message);
      fail(err);
    },
    checkIntervalMs: config.STORE_CHECK_INTERVAL,
    metrics,
    logger: logger.child({ component: 'store-guard' }),
  });
  try {
    await guard.start();
  } catch (err) {
    await admin.close();
    await redis.quit().catch(() => redis.disconnect());
    throw err;
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
    guard,
    maxClockSkewMs: config.MAX_CLOCK_SKEW,
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
    guard,
    producer,
    policy,
    decisionFormat: config.DECISION_FORMAT,
    topics,
    metrics,
    logger: logger.child({ stage: 'decider' }),
    ...failurePolicy,
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
    // Progress reaches Redis before the offset reaches Kafka: Kafka ahead of Redis then means Redis
    // lost writes (store-guard.ts).
    beforeCommit: async (done: { topic: string; partition: number; nextOffset: string }) => {
      await meta.recordProgress([{ stage, ...done }], Date.now());
    },
    resumeFrom: (assigned: ReadonlyArray<{ topic: string; partitions: number[] }>) =>
      guard.resumeFrom(stage, assigned),
    onBatchDone: (i: { topic: string; partition: number; lag: number; nextOffset: string }) => {
      lagSeries.get(stage)?.add(`${i.topic}|${i.partition}`);
      const labels = { stage, topic: i.topic, partition: String(i.partition) };
      metrics.lag.set(labels, i.lag);
      metrics.progressOffset.set(labels, Number(i.nextOffset));
      metrics.progressTime.set(labels, Date.now() / 1000);
    },
  });
  const stages = new Set(config.ENGINE_STAGES);
  const consumerFor = ({ stage, groupId, topics: topicList }: (typeof stageGroups)[number]): ConsumerPort =>
    createConsumer(
      kafka,
      {
        groupId,
        topics: topicList,
        concurrency: config.CONSUMER_CONCURRENCY,
        sessionTimeoutMs: config.CONSUMER_SESSION_TIMEOUT,
        // Every stage's work is idempotent, and its progress is recorded in Redis before an offset
        // is queued (beforeCommit): a commit lost to a crash only means redelivery.
        backgroundCommits: true,
      },
      logger.child({ stage }),
      consumerEvents(stage),
    );
  const [routerGroup, deciderGroup] = stageGroups as [
    (typeof stageGroups)[number],
    (typeof stageGroups)[number],
  ];
  const deciderConsumer = stages.has('decider') ? consumerFor(deciderGroup) : undefined;
  const routerConsumer = stages.has('router') ? consumerFor(routerGroup) : undefined;
  for (const c of [deciderConsumer, routerConsumer]) if (c) consumers.push(c);
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
    meta,
    guard,
    redis,
    fatal,
    stop() {
      stopping ??= (async () => {
        logger.info('stopping engine: finishing batches in flight');
        // Each stage commits what it finished and leaves its group; what it did not finish is
        // redelivered, so the stages need not wait for each other.
        guard.stop();
        await Promise.all([sweeper.stop(), routerConsumer?.stop(), deciderConsumer?.stop()]);
        await Promise.all([producer.close(), dlqProducer.close(), admin.close()]);
        await redis.quit().catch(() => redis.disconnect());
        logger.info('engine stopped');
      })();
      return stopping;
    },
  };
}
