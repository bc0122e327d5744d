import { EventEmitter } from 'node:events';
import type { Logger } from '@assurance/core';
import type { AdminPort, ConsumerPort, KafkaClient, ProducerPort } from '@assurance/kafka';
import {
  createAdmin,
  createConsumer,
  createKafka,
  createProducer,
  kafkaSecurity,
  parseBrokers,
  provision,
  RegistryCodec,
} from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import { loadPolicyFile, loadShadowPolicies } from '@assurance/policy';
import {
  keySpace,
  MetaStore,
  openRedis,
  type RedisConnection,
  StateStore,
  secretDigest,
} from '@assurance/redis';
import {
  channelRef,
  type DecisionSigner,
  DecisionVerifier,
  type EngineStage,
  engineStageGroups,
  parsePublicKeys,
  parseSigningKey,
  type TopicNames,
  topicNames,
} from '@assurance/schemas';
import type { EngineConfig } from './config.ts';
import { Decider } from './decider.ts';
import { DeadLetterSink } from './dlq.ts';
import { FanoutWorker } from './fanout.ts';
import type { EngineMetrics } from './metrics.ts';
import { createEngineMetrics } from './metrics.ts';
import { recoverLostStore, seedFromDecisions } from './recovery.ts';
import type { RoutedInfo } from './router.ts';
import { Router } from './router.ts';
import { ShadowRunner } from './shadow.ts';
import { StageHooks } from './stage-hooks.ts';
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
 * import time; this function is the only place that does, step by step below.
 */
export async function startEngine(
  config: EngineConfig,
  logger: Logger,
  opts: {
    policy?: Policy;
    /**
     * A clock for the router, fan-out and decider instead of the wall clock: a backtest replays
     * history at one frozen instant, so two runs decide alike. Not for a live engine.
     */
    clock?: () => number;
  } = {},
): Promise<Engine> {
  const policy = opts.policy ?? loadPolicyFile(config.POLICY_FILE);
  const topics = topicNames(config.TOPIC_NAMESPACE);
  const metrics = createEngineMetrics();
  logger.info(
    { policyVersion: policy.version, policyDigest: policy.digest, namespace: config.TOPIC_NAMESPACE },
    'starting engine',
  );
  let fail: (e: Error) => void = () => {};
  const fatal = new Promise<Error>((resolve) => {
    fail = resolve;
  });

  // Parsed (and its halves checked against each other) once: the decider signs with it, and the
  // rebuild trusts its public half.
  const signer = parseSigningKey(config.DECISION_SIGNING_KEY);
  const { redis, store, meta } = await connectStore(config, metrics);
  const { kafka, codec, admin } = await connectKafka(config, topics, logger);
  const consumers: ConsumerPort[] = [];
  const guard = await startGuard({
    config,
    policy,
    topics,
    redis,
    store,
    meta,
    kafka,
    admin,
    consumers,
    signer,
    metrics,
    logger,
    fail,
  });
  const outputs = await openOutputs(kafka, config, store, metrics, logger);
  const events = new EventEmitter<EngineEvents>();
  const stages = new Set(config.ENGINE_STAGES);
  const fanout = new FanoutWorker({
    store,
    producer: outputs.producer,
    guard,
    topics,
    metrics,
    logger: logger.child({ stage: 'fanout' }),
    pageSize: config.FANOUT_PAGE_SIZE,
    intervalMs: config.SWEEP_INTERVAL,
    leaseMs: config.SWEEP_LEASE,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const { router, decider } = buildStages({
    config,
    policy,
    topics,
    store,
    guard,
    codec,
    outputs,
    signer,
    metrics,
    logger,
    events,
    onFanoutQueued: () => fanout.wake(),
    clock: opts.clock,
  });

  const hooks = new StageHooks({ meta, guard, metrics, onFatal: fail });
  const consumerFor = ({ stage, groupId, topics: subscribed }: StageGroup): ConsumerPort =>
    createConsumer(
      kafka,
      {
        groupId,
        topics: subscribed,
        concurrency: config.CONSUMER_CONCURRENCY,
        sessionTimeoutMs: config.CONSUMER_SESSION_TIMEOUT,
        // Every stage's work is idempotent, and its progress is recorded in Redis before an offset
        // is queued (beforeCommit): a commit lost to a crash only means redelivery.
        backgroundCommits: true,
      },
      logger.child({ stage }),
      hooks.for(stage),
    );
  const group = (stage: EngineStage) =>
    engineStageGroups(config.ENGINE_GROUP_ID, topics).find((g) => g.stage === stage) as StageGroup;
  const deciderConsumer = stages.has('decider') ? consumerFor(group('decider')) : undefined;
  const routerConsumer = stages.has('router') ? consumerFor(group('router')) : undefined;
  for (const c of [deciderConsumer, routerConsumer]) if (c) consumers.push(c);
  await deciderConsumer?.start((messages) => decider.handle(messages));
  await routerConsumer?.start((messages) => router.handle(messages));
  const sweeper = new Sweeper({
    store,
    producer: outputs.producer,
    topics,
    metrics,
    logger: logger.child({ stage: 'sweeper' }),
    intervalMs: config.SWEEP_INTERVAL,
    leaseMs: config.SWEEP_LEASE,
  });
  if (stages.has('sweeper')) sweeper.start();
  // Queued fan-outs are the router's work: any engine routing events sends their pages.
  if (stages.has('router')) fanout.start();
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
        await Promise.all([sweeper.stop(), fanout.stop(), routerConsumer?.stop(), deciderConsumer?.stop()]);
        await Promise.all([outputs.producer.close(), outputs.dlqProducer.close(), admin.close()]);
        await redis.quit().catch(() => redis.disconnect());
        logger.info('engine stopped');
      })();
      return stopping;
    },
  };
}

type StageGroup = ReturnType<typeof engineStageGroups>[number];

/** Redis, with the state store (its scripts timed into the metrics) and the store's bookkeeping. */
async function connectStore(config: EngineConfig, metrics: EngineMetrics) {
  const redis = openRedis(config, { kind: 'engine' });
  await redis.connect();
  const keys = keySpace(config.REDIS_PREFIX);
  const store = new StateStore(redis, keys, {
    keepMs: config.LATE_EVENT_WINDOW,
    stateTtlMs: config.STATE_TTL,
    onScript: (script, seconds, ok) =>
      metrics.redisScript.observe({ script, result: ok ? 'ok' : 'error' }, seconds),
  });
  return { redis, store, meta: new MetaStore(redis, keys) };
}

/** The Kafka client, the registry codec, and an admin client, with every topic and schema provisioned. */
async function connectKafka(config: EngineConfig, topics: TopicNames, logger: Logger) {
  const kafka = createKafka({
    brokers: parseBrokers(config.KAFKA_BROKERS),
    clientId: config.CLIENT_ID,
    ...kafkaSecurity(config),
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
  return { kafka, codec, admin };
}

/**
 * The store guard, started: the store verified as this deployment's (rebuilt from Kafka first if
 * it lost data) before any stage consumes (store-guard.ts).
 */
async function startGuard(d: {
  config: EngineConfig;
  policy: Policy;
  topics: TopicNames;
  redis: RedisConnection;
  store: StateStore;
  meta: MetaStore;
  kafka: KafkaClient;
  admin: AdminPort;
  /** The stages' consumers, once they exist: a resync or a flush reaches all of them. */
  consumers: readonly ConsumerPort[];
  signer: DecisionSigner;
  metrics: EngineMetrics;
  logger: Logger;
  fail: (e: Error) => void;
}): Promise<StoreGuard> {
  const { config, policy, meta, consumers, logger } = d;
  const recoveryDeps = {
    kafka: d.kafka,
    decisionsTopic: d.topics.decisions,
    groupIdPrefix: `${config.ENGINE_GROUP_ID}.recovery`,
    state: d.store,
    meta,
    prefix: config.REDIS_PREFIX,
    secretDigest: secretDigest(config.CHANNEL_HASH_SECRET),
    policyDigest: policy.digest,
    // Decisions are read back only if this engine's key, or one still trusted, signed them.
    verifier: new DecisionVerifier([
      d.signer.publicJwk,
      ...(config.DECISION_PUBLIC_KEYS ? parsePublicKeys(config.DECISION_PUBLIC_KEYS) : []),
    ]),
    metrics: d.metrics,
    logger: logger.child({ component: 'recovery' }),
  };
  const guard = new StoreGuard({
    redis: d.redis,
    meta,
    admin: d.admin,
    stages: engineStageGroups(config.ENGINE_GROUP_ID, d.topics),
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
      d.fail(err);
    },
    checkIntervalMs: config.STORE_CHECK_INTERVAL,
    metrics: d.metrics,
    logger: logger.child({ component: 'store-guard' }),
  });
  try {
    await guard.start();
  } catch (err) {
    await d.admin.close();
    await d.redis.quit().catch(() => d.redis.disconnect());
    throw err;
  }
  return guard;
}

/** The pipeline's producer and the dead letters' own (see dlq.ts), with the dead-letter sink. */
async function openOutputs(
  kafka: KafkaClient,
  config: EngineConfig,
  store: StateStore,
  metrics: EngineMetrics,
  logger: Logger,
) {
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
  return { producer, dlqProducer, deadLetters };
}

/** The shadow policies' runner (SHADOW_POLICIES), or undefined when there are none. */
function shadowRunner(
  config: EngineConfig,
  live: Policy,
  producer: ProducerPort,
  topic: string,
  metrics: EngineMetrics,
  logger: Logger,
): ShadowRunner | undefined {
  const shadows = loadShadowPolicies(config.SHADOW_POLICIES);
  if (shadows.size === 0) return undefined;
  logger.info(
    { shadows: [...shadows].map(([name, p]) => `${name} ${p.version}`) },
    'shadow policies evaluate beside every decision',
  );
  return new ShadowRunner({
    shadows,
    live,
    producer,
    topic,
    metrics,
    logger: logger.child({ stage: 'shadow' }),
  });
}

/** The router and the decider over the store, the guard and the outputs, sharing one failure policy. */
function buildStages(d: {
  config: EngineConfig;
  policy: Policy;
  topics: TopicNames;
  store: StateStore;
  guard: StoreGuard;
  codec: RegistryCodec;
  outputs: Awaited<ReturnType<typeof openOutputs>>;
  signer: DecisionSigner;
  metrics: EngineMetrics;
  logger: Logger;
  events: EventEmitter<EngineEvents>;
  onFanoutQueued: () => void;
  clock: (() => number) | undefined;
}) {
  const { config, policy, topics, store, guard, metrics, logger } = d;
  const failurePolicy = {
    retryBackoffMs: config.RETRY_BACKOFF,
    retryBudgetMs: config.RETRY_BUDGET,
    dlqMaxBytes: config.DLQ_MAX_BYTES,
    deadLetters: d.outputs.deadLetters,
  };
  const router = new Router({
    codec: d.codec,
    producer: d.outputs.producer,
    store,
    guard,
    maxClockSkewMs: config.MAX_CLOCK_SKEW,
    policy,
    hash: (kind, value) => channelRef(config.CHANNEL_HASH_SECRET, kind, value),
    topics,
    metrics,
    logger: logger.child({ stage: 'router' }),
    ...failurePolicy,
    onRouted: (info) => d.events.emit('routed', info),
    fanoutPageSize: config.FANOUT_PAGE_SIZE,
    onFanoutQueued: () => d.onFanoutQueued(),
    ...(d.clock ? { clock: d.clock } : {}),
  });
  const decider = new Decider({
    store,
    guard,
    producer: d.outputs.producer,
    policy,
    decisionFormat: config.DECISION_FORMAT,
    signer: d.signer,
    topics,
    metrics,
    logger: logger.child({ stage: 'decider' }),
    ...failurePolicy,
    shadow: shadowRunner(d.config, policy, d.outputs.producer, topics.shadow, metrics, logger),
    ...(d.clock ? { clock: () => new Date((d.clock as () => number)()) } : {}),
  });
  return { router, decider };
}
