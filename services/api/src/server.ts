import { AssuranceError, type Logger } from '@assurance/core';
import type { EngineWatch } from '@assurance/kafka';
import {
  createAdmin,
  createConsumer,
  createKafka,
  createProducer,
  kafkaSecurity,
  parseBrokers,
} from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import { loadPolicyFile, loadShadowPolicies } from '@assurance/policy';
import {
  keySpace,
  MetaStore,
  openRedis,
  type RedisConnection,
  SourceHealthStore,
  SsfTransmitStore,
  StateReader,
  secretDigest,
} from '@assurance/redis';
import { topicNames } from '@assurance/schemas';
import {
  loadTransmitters,
  type MappingRule,
  mappingFrom,
  Poller,
  SetReceiver,
  SetSigner,
  type Transmitter,
  TransmittersFileError,
} from '@assurance/ssf';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import type { ApiConfig } from './config.ts';
import { ActivitySource } from './console/activity.ts';
import { watchEngine } from './engine-health.ts';
import type { ApiMetrics } from './metrics.ts';
import { createApiMetrics } from './metrics.ts';
import { registryPinger } from './readiness.ts';
import { publishSignal } from './routes/signals.ts';
import type { SsfTxRouteDeps } from './routes/ssf-tx.ts';
import { SourceHealthWatch } from './source-health.ts';
import { SsfTransmitter } from './ssf-transmitter.ts';
import { StoreTrust } from './store-trust.ts';

export interface ApiRuntime {
  readonly app: FastifyInstance;
  readonly engine: EngineWatch;
  readonly metrics: ApiMetrics;
  readonly policy: Policy;
  readonly redis: RedisConnection;
  /** Closes the HTTP server (finishing requests in flight), then Kafka and Redis. */
  stop(): Promise<void>;
}

/**
 * Connects what the app needs and builds it; the caller decides whether and where to listen.
 * Used by main.ts and by the tests, so both run the same wiring.
 *
 * Redis is optional at start: commands fail at once while it is away (no offline queue), which the
 * read path turns into fail-closed answers, and ioredis reconnects in the background. Kafka is
 * required: without it neither signals nor the engine's lag can be known, so start fails and the
 * supervisor retries.
 */
export interface StartOptions {
  /** The engine watch's clock (ms); tests move it forward to age the last sample. */
  readonly lagClock?: () => number;
}

/**
 * A secret other than the engine's would hash every reported channel to a binding nobody has: the
 * verdicts would stay strict, but for a reason no operator would find. The store's fingerprint
 * carries a digest of the engine's secret; a readable fingerprint that disagrees stops the API.
 */
async function checkChannelSecret(
  secret: string | undefined,
  meta: MetaStore,
  logger: Logger,
): Promise<void> {
  if (secret === undefined) {
    logger.warn(
      'CHANNEL_HASH_SECRET is not set: verify will not judge the channel a step-up was completed on (docs/api.md, verify)',
    );
    return;
  }
  const fingerprint = await meta.fingerprint().catch(() => null);
  if (fingerprint && fingerprint.secret !== secretDigest(secret)) {
    throw new AssuranceError(
      'config_invalid',
      "CHANNEL_HASH_SECRET differs from the engine's (the store's fingerprint was made with another): set the engine's secret, or leave it unset",
    );
  }
}

export async function startApi(
  config: ApiConfig,
  logger: Logger,
  opts: StartOptions = {},
): Promise<ApiRuntime> {
  const policy = loadPolicyFile(config.POLICY_FILE);
  const shadowPolicies = loadShadowPolicies(config.SHADOW_POLICIES);
  const topics = topicNames(config.TOPIC_NAMESPACE);
  // A bad transmitters file stops the start, as a bad policy does: never a receiver half trusted.
  let transmitters: Transmitter[] | undefined;
  if (config.SSF_TRANSMITTERS_FILE) {
    try {
      transmitters = loadTransmitters(config.SSF_TRANSMITTERS_FILE);
    } catch (err) {
      if (err instanceof TransmittersFileError)
        throw new AssuranceError('config_invalid', `SSF_TRANSMITTERS_FILE ${err.message}`);
      throw err;
    }
  }
  const metrics = createApiMetrics();

  // Commands of concurrent requests share one write (see StateReader.readWithStatus).
  const redis = openRedis(config, { kind: 'api', commandTimeoutMs: config.REDIS_TIMEOUT });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  try {
    await redis.connect();
  } catch (err) {
    logger.warn(
      { err: (err as Error).message },
      'Redis unreachable at start; answering fail-closed until it is back',
    );
  }
  const keys = keySpace(config.REDIS_PREFIX);
  const store = new StateReader(redis, keys);
  const meta = new MetaStore(redis, keys);
  const trust = new StoreTrust(redis, meta, policy.digest, logger);
  if (redis.status === 'ready') await trust.refresh();
  await checkChannelSecret(config.CHANNEL_HASH_SECRET, meta, logger);

  const kafka = createKafka({
    brokers: parseBrokers(config.KAFKA_BROKERS),
    clientId: config.CLIENT_ID,
    logger,
    requestTimeoutMs: 5000,
    ...kafkaSecurity(config),
  });
  const producer = await createProducer(kafka);
  const admin = await createAdmin(kafka).catch(async (err: unknown) => {
    await producer.close();
    throw err;
  });
  const engine = watchEngine({
    admin,
    groupId: config.ENGINE_GROUP_ID,
    topics,
    intervalMs: config.LAG_REFRESH_INTERVAL,
    maxStallMs: config.MAX_STALL,
    maxAgeMs: config.LAG_MAX_AGE,
    maxLag: config.MAX_ENGINE_LAG,
    metrics,
    logger,
    ...(opts.lagClock ? { clock: opts.lagClock } : {}),
  });
  metrics.readEngineHealthFrom(() => engine.health());
  await engine.start();

  // The policy's table of which received event becomes which signal, checked before anything runs.
  let mapping: MappingRule[] | undefined;
  try {
    mapping = policy.sharedSignals?.mapping ? mappingFrom(policy.sharedSignals.mapping) : undefined;
  } catch (err) {
    throw new AssuranceError('config_invalid', (err as Error).message);
  }
  const sourceStore = new SourceHealthStore(redis, keys);
  const sourceHealth =
    transmitters === undefined
      ? undefined
      : new SourceHealthWatch({
          transmitters,
          store: sourceStore,
          logger,
          metrics,
          checkIntervalMs: config.SSF_CHECK_INTERVAL,
          defaultFloor: policy.sharedSignals?.whenUnavailable ?? 'high',
        });
  // Answers wait for nothing: what is known is read before the API listens; the transmitters are
  // asked in the background.
  await sourceHealth?.start();
  const ssfReceiver =
    transmitters === undefined
      ? undefined
      : new SetReceiver({
          transmitters,
          ...(mapping ? { mapping } : {}),
          verification: (name, state, at) => sourceStore.verified(name, state, at),
          streamUpdated: (name, status, reason, at) => sourceStore.setStatus(name, status, reason, at),
          publish: (event) =>
            publishSignal(
              { producer, topic: topics.compromiseSignal, produceTimeoutMs: config.PRODUCE_TIMEOUT },
              event,
            ),
        });
  // Our own transmitter: decisions become SETs for the receivers' streams (ssf-transmitter.ts).
  let ssfTransmitter: SsfTxRouteDeps['transmitter'];
  if (config.SSF_ISSUER && config.SSF_SIGNING_KEYS) {
    const signer = new SetSigner(config.SSF_ISSUER.replace(/\/$/, ''), config.SSF_SIGNING_KEYS);
    const txStore = new SsfTransmitStore(redis, keys);
    const runtime = new SsfTransmitter({
      signer,
      store: txStore,
      policy,
      producer,
      dlqTopic: topics.dlq,
      logger: logger.child({ component: 'ssf-transmitter' }),
      metrics,
    });
    ssfTransmitter = { signer, store: txStore, runtime };
  }
  const activity = new ActivitySource({
    kafka,
    topics: { audit: topics.audit, dlq: topics.dlq },
    groupIdPrefix: `${config.ENGINE_GROUP_ID}.console`,
    options: { lookback: config.CONSOLE_LOOKBACK, identities: config.CONSOLE_IDENTITIES },
    logger: logger.child({ component: 'console-activity' }),
  });
  activity.start();
  const app = buildApp({
    activity,
    logger,
    policy,
    store,
    producer,
    signalTopic: topics.compromiseSignal,
    tokens: config.API_TOKENS,
    engine,
    readiness: {
      pingRedis: async () => {
        await redis.ping();
      },
      checkStore: async () => {
        const status = await meta.status();
        const reasons = trust.reasons(status);
        if (reasons.length > 0) throw new Error(reasons.join(', '));
        return `epoch ${status.epoch}, verified, complete`;
      },
      pingRegistry: registryPinger(config.SCHEMA_REGISTRY_URL),
    },
    metrics,
    bodyLimit: config.BODY_LIMIT,
    storeReasons: (status) => trust.reasons(status),
    produceTimeoutMs: config.PRODUCE_TIMEOUT,
    channelHashSecret: config.CHANNEL_HASH_SECRET,
    ssfReceiver,
    sourceFloor: sourceHealth ? () => sourceHealth.floor() : undefined,
    ssfTransmitter,
    shadowPolicies,
  });
  await app.ready();
  // Transmitters that deliver by poll (RFC 8936) are polled for as long as the API runs.
  const pollers = (transmitters ?? []).flatMap((t) =>
    t.poll === undefined || ssfReceiver === undefined
      ? []
      : [
          new Poller({
            receiver: ssfReceiver,
            transmitter: t.name,
            endpoint: t.poll.endpoint,
            token: t.poll.token,
            maxEvents: t.poll.maxEvents,
            intervalMs: t.poll.intervalMs,
            logger,
            onOutcome: (outcome) => metrics.ssfSets.inc({ transmitter: t.name, outcome }),
          }),
        ],
  );
  for (const p of pollers) p.start();
  if (ssfTransmitter)
    await ssfTransmitter.runtime.start(
      createConsumer(
        kafka,
        {
          groupId: `${config.ENGINE_GROUP_ID}.ssf-transmitter`,
          topics: [topics.decisions],
          backgroundCommits: true,
        },
        logger,
      ),
    );

  let stopping: Promise<void> | undefined;
  return {
    app,
    engine,
    metrics,
    policy,
    redis,
    stop() {
      stopping ??= (async () => {
        await app.close();
        await activity.stop();
        await Promise.all(pollers.map((p) => p.stop()));
        await ssfTransmitter?.runtime.stop();
        await sourceHealth?.stop();
        trust.stop();
        await engine.stop();
        await Promise.allSettled([producer.close(), admin.close()]);
        await redis.quit().catch(() => redis.disconnect());
      })();
      return stopping;
    },
  };
}
