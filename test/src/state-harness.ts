import { createLogger } from '@assurance/core';
import type { BatchGuard, RoutedMessage } from '@assurance/engine';
import { createEngineMetrics, DeadLetterSink, Decider, FanoutWorker, Router } from '@assurance/engine';
import type { InboundMessage, OutboundMessage, ProducerPort } from '@assurance/kafka';
import { RegistryCodec } from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import { expandDecision } from '@assurance/policy';
import type { IdentityRecord, RedisConnection } from '@assurance/redis';
import { keySpace, MetaStore, StateStore } from '@assurance/redis';
import { channelRef, type Decision, DecisionSigner, type DecisionV2, topicNames } from '@assurance/schemas';
import { TEST_SIGNING_KEY } from './pipeline.ts';
import type { ModelEvent } from './state-model.ts';

/**
 * The engine's real router and decider, in one process, on the real Redis, with the clock in the
 * test's hands: what the property test runs its generated events through. Kafka is replaced by
 * in-memory queues that keep its guarantees (per key, in order; at least once): the scripts, the
 * merges and the decisions under test are the engine's own, and the end-to-end path through Kafka
 * is what the fault tests break (test/faults).
 */

export const STATE_SECRET = 'state-oracle-secret-0123456789';
export const refOf = (type: string, value: string) => channelRef(STATE_SECRET, type, value);

/** Never in the way: data loss is not what this harness exercises (see the kill -9 tests). */
const steadyGuard: BatchGuard = {
  hold: () => undefined,
  begin: () => ({ generation: 0, epoch: 0 }),
  verify: async () => undefined,
  epoch: 0,
};

class MemoryProducer implements ProducerPort {
  readonly sent: OutboundMessage[] = [];
  async send(messages: readonly OutboundMessage[]): Promise<void> {
    this.sent.push(...messages);
  }
  async close(): Promise<void> {}
  take(): OutboundMessage[] {
    return this.sent.splice(0, this.sent.length);
  }
}

export interface HarnessOptions {
  readonly redis: RedisConnection;
  readonly prefix: string;
  readonly policy: Policy;
  readonly stateTtlMs: number;
  readonly keepMs: number;
  readonly maxClockSkewMs: number;
  /** Members per page of a channel fan-out (the engine's FANOUT_PAGE_SIZE). */
  readonly fanoutPageSize?: number;
}

export class StateHarness {
  readonly store: StateStore;
  readonly meta: MetaStore;
  readonly decisions: Decision[] = [];
  readonly deadLetters: OutboundMessage[] = [];
  readonly metrics = createEngineMetrics();
  #now = 0;
  readonly #router: Router;
  readonly #decider: Decider;
  readonly #fanout: FanoutWorker;
  readonly #producer = new MemoryProducer();
  readonly #internal: InboundMessage[] = [];
  readonly #topics = topicNames('oracle');
  readonly #policy: Policy;
  #offset = 0;

  constructor(o: HarnessOptions) {
    this.#policy = o.policy;
    const keys = keySpace(o.prefix);
    this.store = new StateStore(o.redis, keys, { keepMs: o.keepMs, stateTtlMs: o.stateTtlMs });
    this.meta = new MetaStore(o.redis, keys);
    const logger = createLogger('state-oracle', 'silent');
    const metrics = this.metrics;
    const failure = {
      retryBackoffMs: 0,
      retryBudgetMs: 0,
      dlqMaxBytes: 64 * 1024,
      deadLetters: new DeadLetterSink({
        producer: this.#producer,
        recorder: this.store,
        onUnwritten: () => {},
        logger,
      }),
    };
    this.#router = new Router({
      // JSON values only: the registry is never asked.
      codec: new RegistryCodec({ url: 'http://127.0.0.1:9' }),
      producer: this.#producer,
      store: this.store,
      guard: steadyGuard,
      maxClockSkewMs: o.maxClockSkewMs,
      policy: o.policy,
      hash: refOf,
      topics: this.#topics,
      metrics,
      logger,
      clock: () => this.#now,
      fanoutPageSize: o.fanoutPageSize ?? 500,
      ...failure,
    });
    this.#fanout = new FanoutWorker({
      store: this.store,
      producer: this.#producer,
      guard: steadyGuard,
      topics: this.#topics,
      metrics,
      logger,
      pageSize: o.fanoutPageSize ?? 500,
      intervalMs: 1000,
      leaseMs: 30_000,
      clock: () => this.#now,
    });
    this.#decider = new Decider({
      store: this.store,
      guard: steadyGuard,
      producer: this.#producer,
      policy: o.policy,
      topics: this.#topics,
      metrics,
      logger,
      signer: new DecisionSigner(TEST_SIGNING_KEY),
      clock: () => new Date(this.#now),
      ...failure,
    });
  }

  set now(ms: number) {
    this.#now = ms;
  }

  get now(): number {
    return this.#now;
  }

  /**
   * One input message through the router, and any fan-out it queued through the fan-out worker;
   * what they route waits on the internal topic.
   */
  async route(e: ModelEvent): Promise<void> {
    const { topic, key, value } = toMessage(e, this.#topics);
    const result = await this.#router.handle([this.#inbound(topic, key, JSON.stringify(value))]);
    if (result.processed !== 1) throw new Error(`router did not finish: ${result.reason}`);
    await this.#fanout.drain();
    this.#collect();
  }

  /** Delivers the first `n` routed messages waiting (all by default) to the decider, in order. */
  async decide(n = this.#internal.length): Promise<void> {
    const batch = this.#internal.splice(0, n);
    if (batch.length === 0) return;
    const result = await this.#decider.handle(batch);
    if (result.processed !== batch.length) throw new Error(`decider did not finish: ${result.reason}`);
    this.#collect();
  }

  get pending(): number {
    return this.#internal.length;
  }

  /** Re-decides an identity now, as the sweeper would at an expiry. */
  async expire(identityId: string): Promise<void> {
    const m: RoutedMessage = {
      v: 2,
      kind: 'expire',
      identityId,
      trigger: {
        eventId: `expiry:${this.#now}`,
        topic: 'assurance.identity-events.v1',
        occurredAt: new Date(this.#now).toISOString(),
      },
      receivedAtMs: this.#now,
    };
    this.#internal.push(this.#inbound(this.#topics.identityEvents, identityId, JSON.stringify(m)));
    await this.decide();
  }

  async read(identityId: string): Promise<IdentityRecord | null> {
    return this.store.read(identityId, this.#now);
  }

  #collect(): void {
    for (const m of this.#producer.take()) {
      if (m.topic === this.#topics.identityEvents) {
        this.#internal.push(this.#inbound(m.topic, String(m.key), String(m.value)));
      } else if (m.topic === this.#topics.decisions) {
        this.decisions.push(
          expandDecision(this.#policy, JSON.parse(String(m.value)) as Decision | DecisionV2),
        );
      } else if (m.topic === this.#topics.dlq) {
        this.deadLetters.push(m);
      }
    }
  }

  #inbound(topic: string, key: string, value: string): InboundMessage {
    this.#offset += 1;
    return {
      topic,
      partition: 0,
      offset: String(this.#offset),
      key: Buffer.from(key),
      value: Buffer.from(value),
      headers: {},
      timestampMs: this.#now,
    };
  }
}

/** The message a producer would send for a model event: its topic, key and JSON value. */
export function toMessage(
  e: ModelEvent,
  topics: ReturnType<typeof topicNames>,
): { topic: string; key: string; value: Record<string, unknown> } {
  const envelope = {
    eventId: e.eventId,
    occurredAt: new Date(e.at).toISOString(),
    source: e.source,
    ...('tenant' in e && e.tenant !== undefined ? { tenantId: e.tenant } : {}),
  };
  switch (e.kind) {
    case 'bind':
    case 'unbind':
      return {
        topic: topics.channelBinding,
        key: e.id,
        value: {
          ...envelope,
          identityId: e.id,
          op: e.kind === 'bind' ? 'bound' : 'unbound',
          channel: e.channel,
          uses: { authenticators: e.auth, recovery: e.rec },
        },
      };
    case 'bindSync':
    case 'unbindSync':
      return {
        topic: topics.channelBinding,
        key: e.id,
        value: {
          ...envelope,
          identityId: e.id,
          op: e.kind === 'bindSync' ? 'bound' : 'unbound',
          channel: { type: 'sync_account', value: e.sync },
          uses: { authenticators: e.kind === 'bindSync' ? ['passkey_synced'] : [], recovery: [] },
          ...(e.kind === 'bindSync' ? { recoverableVia: e.routes } : {}),
        },
      };
    case 'enroll':
    case 'remove':
    case 'lost':
      return {
        topic: topics.device,
        key: e.id,
        value: {
          ...envelope,
          identityId: e.id,
          deviceId: e.device,
          change: e.kind === 'enroll' ? 'enrolled' : e.kind === 'remove' ? 'removed' : 'lost',
          ...(e.kind === 'enroll' ? { authenticators: e.auth } : {}),
        },
      };
    case 'swap':
      return {
        topic: topics.simSwap,
        key: e.phone,
        value: {
          ...envelope,
          phoneNumber: e.phone,
          swappedAt: new Date(e.swappedAt).toISOString(),
          changeType: 'port_out',
        },
      };
    case 'mailbox':
      return {
        topic: topics.mailboxChange,
        key: e.email,
        value: { ...envelope, mailbox: e.email, change: 'inbox_rule_added' },
      };
    case 'socRaise':
    case 'socClear': {
      const subject = {
        type: e.subject.type,
        value: e.subject.value,
        ...('identityId' in e.subject ? { identityId: e.subject.identityId } : {}),
      };
      return {
        topic: topics.compromiseSignal,
        key: `${e.subject.type}:${e.subject.value}`,
        value:
          e.kind === 'socRaise'
            ? {
                ...envelope,
                signalId: e.signalId,
                op: 'raise',
                subject,
                kind: e.socKind,
                severity: 'high',
                raisedBy: 'soc',
                ...(e.expiresAt === undefined ? {} : { expiresAt: new Date(e.expiresAt).toISOString() }),
              }
            : {
                ...envelope,
                signalId: e.signalId,
                op: 'clear',
                subject,
                ...(e.socKind === undefined ? {} : { kind: e.socKind }),
                raisedBy: 'soc',
              },
      };
    }
    case 'login':
      return {
        topic: topics.login,
        key: e.id,
        value: {
          ...envelope,
          identityId: e.id,
          outcome: e.outcome,
          authenticator: e.authenticator,
          ...(e.device === undefined ? {} : { deviceId: e.device }),
          ...(e.country === undefined ? {} : { country: e.country }),
        },
      };
  }
}
