import { EventEmitter } from 'node:events';
import type { Logger } from '@assurance/core';
import { createLogger } from '@assurance/core';
import type { Engine, EngineConfig } from '@assurance/engine';
import { EngineConfigSchema, startEngine } from '@assurance/engine';
import type { InboundMessage, ProducerPort } from '@assurance/kafka';
import {
  createAdmin,
  createConsumer,
  createKafka,
  createProducer,
  parseBrokers,
  RegistryCodec,
} from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import { expandDecision, loadPolicyFile } from '@assurance/policy';
import type { Decision, DecisionV2 } from '@assurance/schemas';
import { DecisionSigner, generateSigningKey, type TopicNames, topicNames } from '@assurance/schemas';
import { endpoints, uniqueName, uniquePrefix } from './harness.ts';
import { waitForEvent } from './wait.ts';

export const TEST_SECRET = 'test-channel-hash-secret-0123456789';
/** The engines' decision signing key in this test process, and the public key readers trust. */
export const TEST_SIGNING_KEY = generateSigningKey();
export const TEST_PUBLIC_KEY = new DecisionSigner(TEST_SIGNING_KEY).publicJwk;

/** Config for an engine isolated from every other test: its own topics, groups and Redis keys. */
export async function isolatedConfig(overrides: Record<string, string> = {}): Promise<EngineConfig> {
  const e = await endpoints();
  return EngineConfigSchema.parse({
    ...e,
    CHANNEL_HASH_SECRET: TEST_SECRET,
    DECISION_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY),
    TOPIC_NAMESPACE: uniqueName('t'),
    ENGINE_GROUP_ID: uniqueName('g'),
    REDIS_PREFIX: uniquePrefix(),
    INTERNAL_PARTITIONS: '3',
    SWEEP_INTERVAL: '200ms',
    SWEEP_LEASE: '5s',
    RETRY_BACKOFF: '300ms',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    ...overrides,
  });
}

/**
 * Reads the decisions topic of one namespace from the beginning and lets tests wait for a decision
 * that matches, listening for messages rather than sleeping.
 */
export class DecisionWatcher {
  readonly decisions: Decision[] = [];
  readonly #events = new EventEmitter();
  #stop: (() => Promise<void>) | undefined;

  /** `policy`: the engine's, which format 2 decisions are expanded with (by default its POLICY_FILE's). */
  static async start(
    config: EngineConfig,
    logger: Logger,
    policy: Policy = loadPolicyFile(config.POLICY_FILE),
  ): Promise<DecisionWatcher> {
    const w = new DecisionWatcher();
    const stop = await consumeTopic(config, logger, topicNames(config.TOPIC_NAMESPACE).decisions, (m) => {
      if (!m.value) return;
      // Either format reads as v1: a format 2 decision expanded with the engine's policy.
      const d = expandDecision(policy, JSON.parse(m.value.toString('utf8')) as Decision | DecisionV2);
      w.decisions.push(d);
      w.#events.emit('decision', d);
    });
    w.#stop = stop;
    return w;
  }

  /** The first decision (already seen or still to come) for `identityId` that satisfies `match`. */
  async waitFor(identityId: string, match: (d: Decision) => boolean, timeoutMs = 30_000): Promise<Decision> {
    const hit = this.decisions.find((d) => d.identityId === identityId && match(d));
    if (hit) return hit;
    return waitForEvent<Decision>(
      this.#events,
      'decision',
      (d) => d.identityId === identityId && match(d),
      timeoutMs,
      () =>
        `a decision for ${identityId}; saw ${
          this.forIdentity(identityId)
            .map((d) => `#${d.sequence}`)
            .join(', ') || 'none'
        }`,
    );
  }

  forIdentity(identityId: string): Decision[] {
    return this.decisions.filter((d) => d.identityId === identityId);
  }

  async stop(): Promise<void> {
    await this.#stop?.();
  }
}

/** Reads a whole topic from the beginning in a throwaway group; returns the stop function. */
async function consumeTopic(
  config: EngineConfig,
  logger: Logger,
  topic: string,
  onMessage: (m: InboundMessage) => void,
): Promise<() => Promise<void>> {
  const kafka = createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'test-reader', logger });
  const consumer = createConsumer(
    kafka,
    { groupId: uniqueName('read'), topics: [topic], fromBeginning: true },
    logger,
  );
  await consumer.start(async (messages) => {
    for (const m of messages) onMessage(m);
    return { processed: messages.length };
  });
  return () => consumer.stop();
}

/** Collects every message of one topic from the beginning, with event-driven waits. */
export class TopicCollector {
  readonly messages: InboundMessage[] = [];
  readonly #events = new EventEmitter();
  #stop: (() => Promise<void>) | undefined;

  static async start(config: EngineConfig, logger: Logger, topic: string): Promise<TopicCollector> {
    const c = new TopicCollector();
    c.#stop = await consumeTopic(config, logger, topic, (m) => {
      c.messages.push(m);
      c.#events.emit('message', m);
    });
    return c;
  }

  async waitFor(match: (m: InboundMessage) => boolean, timeoutMs = 30_000): Promise<InboundMessage> {
    const hit = this.messages.find(match);
    if (hit) return hit;
    return waitForEvent<InboundMessage>(
      this.#events,
      'message',
      match,
      timeoutMs,
      () => `saw ${this.messages.length}`,
    );
  }

  async stop(): Promise<void> {
    await this.#stop?.();
  }
}

/** Sends test events as plain JSON or in the registry wire format (Avro, `<topic>-value`). */
export class EventProducer {
  readonly topics: TopicNames;
  readonly codec: RegistryCodec;
  readonly #producer: ProducerPort;

  private constructor(topics: TopicNames, codec: RegistryCodec, producer: ProducerPort) {
    this.topics = topics;
    this.codec = codec;
    this.#producer = producer;
  }

  static async start(config: EngineConfig, logger: Logger): Promise<EventProducer> {
    const kafka = createKafka({
      brokers: parseBrokers(config.KAFKA_BROKERS),
      clientId: 'test-producer',
      logger,
    });
    return new EventProducer(
      topicNames(config.TOPIC_NAMESPACE),
      new RegistryCodec({ url: config.SCHEMA_REGISTRY_URL }),
      await createProducer(kafka),
    );
  }

  async send(topic: string, key: string, value: unknown, encoding: 'json' | 'avro' = 'json'): Promise<void> {
    const bytes =
      encoding === 'avro'
        ? await this.codec.encode(`${topic}-value`, value)
        : Buffer.from(JSON.stringify(value));
    await this.#producer.send([{ topic, key, value: bytes }]);
  }

  async sendRaw(topic: string, key: string | null, value: Buffer | string): Promise<void> {
    await this.#producer.send([{ topic, key, value }]);
  }

  close(): Promise<void> {
    return this.#producer.close();
  }
}

/** An engine, a producer and a decision watcher on one isolated namespace. */
export async function startPipeline(overrides: Record<string, string> = {}) {
  const config = await isolatedConfig(overrides);
  const logger = createLogger('test', config.LOG_LEVEL);
  const engine: Engine = await startEngine(config, logger);
  const parts = await Promise.allSettled([
    EventProducer.start(config, logger),
    DecisionWatcher.start(config, logger, engine.policy),
    TopicCollector.start(config, logger, engine.topics.dlq),
  ] as const);
  if (parts.some((r) => r.status === 'rejected')) {
    // Close what did start, or its handles would keep the test process alive after the failure.
    await Promise.allSettled(
      parts.map((r) => {
        if (r.status !== 'fulfilled') return undefined;
        return r.value instanceof EventProducer ? r.value.close() : r.value.stop();
      }),
    );
    await engine.stop();
    throw (parts.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
  }
  const [producer, watcher, dlq] = parts.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    EventProducer,
    DecisionWatcher,
    TopicCollector,
  ];
  return {
    config,
    logger,
    engine,
    producer,
    watcher,
    dlq,
    topics: engine.topics,
    async stop() {
      await Promise.all([watcher.stop(), producer.close(), dlq.stop()]);
      await engine.stop();
      const admin = await createAdmin(
        createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'test-cleanup', logger }),
      );
      await admin.deleteTopics(Object.values(engine.topics)).catch(() => {});
      await admin.close();
    },
  };
}

let seq = 0;
/** A fresh envelope: unique eventId, `occurredAt` now (or offset), a test source. */
export function envelope(offsetMs = 0) {
  seq += 1;
  return {
    eventId: `evt-${Date.now().toString(36)}-${seq}`,
    occurredAt: new Date(Date.now() + offsetMs).toISOString(),
    source: 'test',
  };
}

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;

/**
 * Push on two devices: `phone-old` bound a minute ago through a channel binding (no new-device
 * window), `phone-new` enrolled now (a device event: the new-device window opens on it). Resolves
 * with the decision in which the high tier accepts push on the old device alone.
 */
export async function pushOnOldAndNewDevice(p: Pipeline, identityId: string): Promise<Decision> {
  await p.producer.send(p.topics.channelBinding, identityId, {
    ...envelope(-60_000),
    identityId,
    op: 'bound',
    channel: { type: 'device', value: 'phone-old' },
    uses: { authenticators: ['push'], recovery: [] },
  });
  await p.producer.send(p.topics.device, identityId, {
    ...envelope(),
    identityId,
    deviceId: 'phone-new',
    change: 'enrolled',
    authenticators: ['push'],
  });
  return p.watcher.waitFor(identityId, (d) =>
    d.tiers.high.excludedAuthenticators.some(
      (x) => x.authenticator === 'push' && x.acceptableOn?.length === 1,
    ),
  );
}

/** `identityId` gets its SMS codes and recovery on `phone` (bound a minute ago); its next decision. */
export async function bindSmsPhone(p: Pipeline, identityId: string, phone: string): Promise<Decision> {
  await p.producer.send(p.topics.channelBinding, identityId, {
    ...envelope(-60_000),
    identityId,
    op: 'bound',
    channel: { type: 'phone', value: phone },
    uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
  });
  return p.watcher.waitFor(identityId, () => true);
}
