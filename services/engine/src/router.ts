import type { Logger } from '@assurance/core';
import { AssuranceError, asAssuranceError, dispositionOf } from '@assurance/core';
import type {
  BatchResult,
  InboundMessage,
  OutboundMessage,
  ProducerPort,
  RegistryCodec,
} from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import type { Mutation, SignalStore } from '@assurance/redis';
import type { Trigger } from '@assurance/schemas';
import { ContractError, validateEvent } from '@assurance/schemas';
import type { DeriveContext, HashFn, Plan } from './derive.ts';
import {
  deriveChannelBinding,
  deriveCompromiseSignal,
  deriveDevice,
  deriveMailboxChange,
  derivePoisonedSignal,
  deriveSimSwap,
  inheritedMutations,
  RoutingError,
} from './derive.ts';
import { deadLetter } from './dlq.ts';
import type { EngineMetrics } from './metrics.ts';
import type { RoutedMessage } from './routed.ts';
import type { InputRole, TopicNames } from './topics.ts';
import { BASE_TOPICS, roleOf } from './topics.ts';

export interface RouterDeps {
  readonly codec: RegistryCodec;
  readonly producer: ProducerPort;
  readonly store: SignalStore;
  readonly policy: Policy;
  readonly hash: HashFn;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  readonly retryBackoffMs: number;
  /** Instrumentation: called once per input message whose processing is durable. */
  readonly onRouted?: (info: RoutedInfo) => void;
}

export interface RoutedInfo {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly result: 'ok' | 'dead_letter';
  readonly error?: string;
}

interface Envelope {
  readonly eventId: string;
  readonly occurredAt: string;
  readonly source: string;
  readonly tenantId?: string;
}

type Prepared =
  | {
      readonly ok: true;
      readonly msg: InboundMessage;
      readonly role: InputRole;
      readonly plan: Plan;
      readonly ctx: DeriveContext;
    }
  | {
      readonly ok: false;
      readonly msg: InboundMessage;
      readonly error: AssuranceError;
      readonly role: InputRole | undefined;
    };

/** Compromise-signal keys read `<subject type>:<subject value>`. */
function subjectFromKey(key: Buffer | null): { type: string; value: string } | undefined {
  if (!key) return undefined;
  const text = key.toString('utf8');
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) return undefined;
  return { type: text.slice(0, i), value: text.slice(i + 1) };
}

function plan(role: InputRole, event: unknown, ctx: DeriveContext): Plan {
  switch (role) {
    case 'simSwap':
      return deriveSimSwap(event as never, ctx);
    case 'mailboxChange':
      return deriveMailboxChange(event as never, ctx);
    case 'channelBinding':
      return deriveChannelBinding(event as never, ctx);
    case 'device':
      return deriveDevice(event as never, ctx);
    case 'compromiseSignal':
      return deriveCompromiseSignal(event as never, ctx);
    case 'login':
      return {
        kind: 'login',
        identityId: (event as { identityId: string }).identityId,
        event: event as never,
      };
    default: {
      const unreachable: never = role;
      throw new Error(`no plan for ${String(unreachable)}`);
    }
  }
}

/**
 * Stage one: decode, validate, deduplicate channel-side work and route every event to the
 * identities it concerns, re-keyed by identity on the internal topic. Redis calls for a whole batch
 * are issued in order without awaiting each one (ioredis pipelines them), and everything the batch
 * produces goes out in one send.
 */
export class Router {
  readonly #d: RouterDeps;

  constructor(deps: RouterDeps) {
    this.#d = deps;
  }

  async #prepare(msg: InboundMessage): Promise<Prepared> {
    const role = roleOf(this.#d.topics, msg.topic) as InputRole | undefined;
    try {
      if (!role) throw new AssuranceError('internal', `no route for topic ${msg.topic}`);
      const decoded = await this.#d.codec.decode(msg.value);
      const baseTopic = BASE_TOPICS[role];
      const event = validateEvent(baseTopic, decoded.value) as Envelope & Record<string, unknown>;
      if ('identityId' in event && msg.key && msg.key.toString('utf8') !== event.identityId) {
        throw new AssuranceError('key_mismatch', `key does not match identityId of the value`);
      }
      const trigger: Trigger = { eventId: event.eventId, topic: baseTopic, occurredAt: event.occurredAt };
      const ctx: DeriveContext = {
        settings: this.#d.policy.signals,
        hash: this.#d.hash,
        trigger,
        eventKey: `${event.source}|${event.eventId}`,
        tenantId: event.tenantId ?? null,
      };
      this.#d.metrics.decoded.inc({ topic: baseTopic, encoding: decoded.encoding });
      return { ok: true, msg, role, plan: plan(role, event, ctx), ctx };
    } catch (err) {
      if (err instanceof ContractError) {
        return { ok: false, msg, role, error: new AssuranceError(err.code, err.message, { cause: err }) };
      }
      if (err instanceof RoutingError) {
        return {
          ok: false,
          msg,
          role,
          error: new AssuranceError('validation_failed', err.message, { cause: err }),
        };
      }
      return { ok: false, msg, role, error: asAssuranceError(err) };
    }
  }

  async handle(messages: readonly InboundMessage[]): Promise<BatchResult> {
    const nowMs = Date.now();
    // Decode first: only a schema id missing from the cache awaits the registry.
    const prepared: Prepared[] = [];
    let stoppedBy: AssuranceError | undefined;
    for (const msg of messages) {
      const p = await this.#prepare(msg);
      if (!p.ok && dispositionOf(p.error.code) !== 'dead_letter') {
        if (dispositionOf(p.error.code) === 'stop') throw p.error;
        stoppedBy = p.error;
        break;
      }
      prepared.push(p);
    }
    // Issued in order without awaiting each: ioredis pipelines them and Redis runs them in order.
    const work = prepared.map((p) => this.#outputsOf(p, nowMs));
    const settled = await Promise.allSettled(work);
    const out: OutboundMessage[] = [];
    let processed = 0;
    for (const s of settled) {
      if (s.status === 'rejected') {
        const err = asAssuranceError(s.reason, 'redis_unavailable');
        if (dispositionOf(err.code) === 'stop') throw err;
        // Only what precedes the first failure is done; the rest is redelivered (and deduplicated).
        stoppedBy = err;
        break;
      }
      out.push(...s.value);
      processed++;
    }
    await this.#d.producer.send(out);
    for (const p of prepared.slice(0, processed)) {
      const topic = p.role ? BASE_TOPICS[p.role] : p.msg.topic;
      const result = p.ok ? 'ok' : 'dead_letter';
      this.#d.metrics.consumed.inc({ topic, result });
      this.#d.onRouted?.({
        topic: p.msg.topic,
        partition: p.msg.partition,
        offset: p.msg.offset,
        result,
        ...(p.ok ? {} : { error: p.error.code }),
      });
    }
    if (stoppedBy) {
      this.#d.metrics.failures.inc({ stage: 'router', error: stoppedBy.code });
      this.#d.logger.warn(
        { code: stoppedBy.code, err: stoppedBy.message },
        'router batch stopped early; will retry',
      );
      return { processed, retryAfterMs: this.#d.retryBackoffMs, reason: stoppedBy.code };
    }
    return { processed };
  }

  async #outputsOf(p: Prepared, nowMs: number): Promise<OutboundMessage[]> {
    if (!p.ok) {
      const topic = p.role ? BASE_TOPICS[p.role] : p.msg.topic;
      this.#d.metrics.deadLetters.inc({ topic, error: p.error.code });
      this.#d.logger.warn(
        {
          topic,
          partition: p.msg.partition,
          offset: p.msg.offset,
          error: p.error.code,
          reason: p.error.message,
        },
        'dead-lettering message',
      );
      const out = [deadLetter(this.#d.topics.dlq, p.msg, p.error)];
      if (p.role === 'compromiseSignal') out.push(...(await this.#poisoned(p.msg, nowMs)));
      return out;
    }
    return (await this.#execute(p.plan, p.ctx, nowMs)).map((r) => this.#routed(r));
  }

  /** A dead-lettered SOC signal whose subject we can read from its key fails that subject closed. */
  async #poisoned(msg: InboundMessage, nowMs: number): Promise<OutboundMessage[]> {
    const subject = subjectFromKey(msg.key);
    if (!subject) return [];
    const trigger: Trigger = {
      eventId: `dlq:${msg.topic}:${msg.partition}:${msg.offset}`,
      topic: BASE_TOPICS.dlq,
      occurredAt: new Date(nowMs).toISOString(),
    };
    const ctx: DeriveContext = {
      settings: this.#d.policy.signals,
      hash: this.#d.hash,
      trigger,
      eventKey: `dlq|${msg.topic}:${msg.partition}:${msg.offset}`,
      tenantId: null,
    };
    const planned = derivePoisonedSignal(subject.type, subject.value, ctx);
    if (!planned) return [];
    this.#d.logger.warn({ subjectType: subject.type }, 'unreadable compromise signal: subject fails closed');
    return (await this.#execute(planned, ctx, nowMs)).map((r) => this.#routed(r));
  }

  async #execute(p: Plan, ctx: DeriveContext, nowMs: number): Promise<RoutedMessage[]> {
    const apply = (identityId: string, mutations: readonly Mutation[]): RoutedMessage => ({
      v: 1,
      kind: 'apply',
      identityId,
      tenantId: ctx.tenantId,
      eventKey: ctx.eventKey,
      trigger: ctx.trigger,
      receivedAtMs: nowMs,
      mutations,
    });
    switch (p.kind) {
      case 'identity':
        return [apply(p.identityId, p.mutations)];
      case 'channel': {
        const { identities } = await this.#d.store.channelSignal(
          p.channelRef,
          ctx.eventKey,
          p.mutations,
          nowMs,
        );
        this.#d.metrics.fanout.observe(identities.length);
        return identities.map((id) => apply(id, p.mutations));
      }
      case 'binding': {
        const { signals } = await this.#d.store.channelBind(p.channelRef, p.identityId, p.op, p.occurredAtMs);
        const inherited = p.op === 'bound' ? inheritedMutations(signals) : [];
        return [apply(p.identityId, [...p.mutations, ...inherited])];
      }
      case 'login': {
        const e = p.event;
        const network = e.country || e.asn !== undefined ? `${e.country ?? '?'}|${e.asn ?? '?'}` : null;
        return [
          {
            v: 1,
            kind: 'login',
            identityId: p.identityId,
            tenantId: ctx.tenantId,
            eventKey: ctx.eventKey,
            trigger: ctx.trigger,
            receivedAtMs: nowMs,
            login: {
              outcome: e.outcome,
              authenticator: e.authenticator,
              deviceId: e.deviceId ? this.#d.hash('device', e.deviceId) : null,
              network,
              occurredAtMs: Date.parse(e.occurredAt),
            },
          },
        ];
      }
      case 'none':
        return [];
      default: {
        const unreachable: never = p;
        throw new Error(`unknown plan ${JSON.stringify(unreachable)}`);
      }
    }
  }

  #routed(r: RoutedMessage): OutboundMessage {
    return {
      topic: this.#d.topics.identityEvents,
      key: r.identityId,
      value: JSON.stringify(r),
      headers: { 'content-type': 'application/json' },
    };
  }
}
