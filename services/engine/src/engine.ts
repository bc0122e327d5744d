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

  const producer: ProducerPort = await createProducer(kafka);
  const hash = (kind: string, value: string) => channelRef(config.CHANNEL_HASH_SECRET, kind, value);
  const events = new EventEmitter<EngineEvents>();
  const router = new Router({
    codec,
    producer,
    store,
    policy,
    hash,
    topics,
    metrics,
    logger: logger.child({ stage: 'router' }),
    retryBackoffMs: config.RETRY_BACKOFF,
    onRouted: (info) => events.emit('routed', info),
  });
  const decider = new Decider({
    store,
    producer,
    policy,
    topics,
    metrics,
    logger: logger.child({ stage: 'decider' }),
    retryBackoffMs: config.RETRY_BACKOFF,
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
        metrics.lag.remove({ stage, topic, partition });
      }
      lagSeries.set(stage, keep);
    },
    onBatchDone: (i: { topic: string; partition: number; lag: number }) => {
      lagSeries.get(stage)?.add(`${i.topic}|${i.partition}`);
      metrics.lag.set({ stage, topic: i.topic, partition: String(i.partition) }, i.lag);
    },
  });
  const routerConsumer: ConsumerPort = createConsumer(
    kafka,
    {
      groupId: `${config.ENGINE_GROUP_ID}.router`,
      topics: INPUT_ROLES.map((r) => topics[r]),
      concurrency: config.CONSUMER_CONCURRENCY,
      sessionTimeoutMs: config.CONSUMER_SESSION_TIMEOUT,
    },
    logger.child({ stage: 'router' }),
    consumerEvents('router'),
  );
  const deciderConsumer: ConsumerPort = createConsumer(
    kafka,
    {
      groupId: `${config.ENGINE_GROUP_ID}.decider`,
      topics: [topics.identityEvents],
      concurrency: config.CONSUMER_CONCURRENCY,
      sessionTimeoutMs: config.CONSUMER_SESSION_TIMEOUT,
    },
    logger.child({ stage: 'decider' }),
    consumerEvents('decider'),
  );
  await deciderConsumer.start((messages) => decider.handle(messages));
  await routerConsumer.start((messages) => router.handle(messages));
  const sweeper = new Sweeper({
    store,
    producer,
    topics,
    metrics,
    logger: logger.child({ stage: 'sweeper' }),
    intervalMs: config.SWEEP_INTERVAL,
    leaseMs: config.SWEEP_LEASE,
  });
  sweeper.start();

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
        await Promise.all([sweeper.stop(), routerConsumer.stop(), deciderConsumer.stop()]);
        await producer.close();
        await redis.quit().catch(() => redis.disconnect());
        logger.info('engine stopped');
      })();
      return stopping;
    },
  };
}
