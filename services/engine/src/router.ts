import { createHash } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { AssuranceError, asAssuranceError, dispositionOf } from '@assurance/core';
import type {
  BatchResult,
  InboundMessage,
  OutboundMessage,
  ProducerPort,
  RegistryCodec,
} from '@assurance/kafka';
import { UNDECODABLE_DETAIL_HEADER, UNDECODABLE_HEADER } from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import type { Mutation, StateStore } from '@assurance/redis';
import type { Trigger } from '@assurance/schemas';
import {
  BASE_TOPICS,
  ContractError,
  type InputRole,
  roleOf,
  strictUtf8,
  type TopicNames,
} from '@assurance/schemas';
import type { DeriveContext, HashFn, Plan } from './derive.ts';
import {
  deriveChannelBinding,
  deriveCompromiseSignal,
  deriveDevice,
  deriveMailboxChange,
  derivePoisonedSignal,
  deriveSimSwap,
  RoutingError,
  recordMutations,
} from './derive.ts';
import { deadLetter } from './dlq.ts';
import { channelApplies, fanoutGeneration } from './fanout.ts';
import { membershipUntil } from './membership.ts';
import type { EngineMetrics } from './metrics.ts';
import { observeWait, stoppedEarly, timedBatch } from './metrics.ts';
import { type FailurePolicy, RetryBudget } from './retry-budget.ts';
import type { RoutedMessage, TenantMark } from './routed.ts';
import type { BatchGuard } from './store-guard.ts';

export interface RouterDeps extends FailurePolicy {
  readonly codec: RegistryCodec;
  readonly producer: ProducerPort;
  readonly store: StateStore;
  readonly policy: Policy;
  readonly hash: HashFn;
  /** How far ahead of our clock an event may be dated (docs/state.md, time); later ones are dead-lettered. */
  readonly maxClockSkewMs: number;
  /** Guards every batch's output against a store that lost data (store-guard.ts). */
  readonly guard: BatchGuard;
  readonly clock?: () => number;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  /** Members per page of a channel fan-out (FANOUT_PAGE_SIZE). */
  readonly fanoutPageSize: number;
  /** A channel event left pages of its fan-out to the queue. */
  readonly onFanoutQueued?: () => void;
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

/**
 * What makes two logins one (docs/state.md): the event id and what the login says, not the
 * producer's `source` string, so a replay under another source counts once.
 */
export function loginDigest(l: {
  eventId: string;
  occurredAtMs: number;
  outcome: string;
  authenticator: string;
  deviceId: string | null;
  network: string | null;
}): string {
  return createHash('sha256')
    .update(JSON.stringify([l.eventId, l.occurredAtMs, l.outcome, l.authenticator, l.deviceId, l.network]))
    .digest('base64url')
    .slice(0, 16);
}

type Prepared =
  | {
      readonly ok: true;
      readonly msg: InboundMessage;
      readonly role: InputRole;
      readonly plan: Plan;
      readonly ctx: DeriveContext;
      readonly tenant: TenantMark | null;
    }
  | {
      readonly ok: false;
      readonly msg: InboundMessage;
      readonly error: AssuranceError;
      readonly role: InputRole | undefined;
    };

/**
 * A placeholder for a record of a batch kafkajs could not decompress (packages/kafka codecs): the
 * batch's records are gone, so the placeholder is dead-lettered with the reason and the batch's size
 * and digest (its first bytes ride on the first placeholder).
 */
function undecodable(msg: InboundMessage): void {
  const code = msg.headers[UNDECODABLE_HEADER];
  if (code === undefined) return;
  const detail = msg.headers[UNDECODABLE_DETAIL_HEADER] ?? 'record batch cannot be decompressed';
  throw new AssuranceError(code === 'compression_too_large' ? code : 'compression_invalid', detail);
}

/**
 * The subject a message's key names (docs/contract.md, message keys): the identity for
 * identity-keyed topics, the phone or mailbox for channel topics, `<type>:<value>` for SOC signals.
 * A key that is not UTF-8 names nothing.
 */
function subjectOf(role: InputRole, key: Buffer | null): { type: string; value: string } | undefined {
  if (!key || key.length === 0) return undefined;
  let text: string;
  try {
    text = strictUtf8(key, 'key');
  } catch {
    return undefined;
  }
  switch (role) {
    case 'simSwap':
      return { type: 'phone', value: text };
    case 'mailboxChange':
      return { type: 'email', value: text };
    case 'compromiseSignal': {
      const i = text.indexOf(':');
      if (i <= 0 || i === text.length - 1) return undefined;
      return { type: text.slice(0, i), value: text.slice(i + 1) };
    }
    default:
      return { type: 'identity', value: text };
  }
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
  readonly #budget: RetryBudget;
  readonly #now: () => number;

  constructor(deps: RouterDeps) {
    this.#d = deps;
    this.#budget = new RetryBudget(deps.retryBudgetMs);
    this.#now = deps.clock ?? Date.now;
  }

  async #prepare(msg: InboundMessage, nowMs: number): Promise<Prepared> {
    const role = roleOf(this.#d.topics, msg.topic) as InputRole | undefined;
    try {
      if (!role) throw new AssuranceError('internal', `no route for topic ${msg.topic}`);
      undecodable(msg);
      const baseTopic = BASE_TOPICS[role];
      const decoded = await this.#d.codec.decodeEvent(baseTopic, msg.value, new Date(nowMs));
      const event = decoded.value as Envelope & Record<string, unknown>;
      // Ids are compared exactly as received: a key that is not UTF-8 is refused, never repaired.
      if ('identityId' in event && msg.key && strictUtf8(msg.key, 'message key') !== event.identityId) {
        throw new AssuranceError('key_mismatch', `key does not match identityId of the value`);
      }
      const occurredAtMs = Date.parse(event.occurredAt);
      if (occurredAtMs > nowMs + this.#d.maxClockSkewMs) {
        throw new AssuranceError(
          'future_event',
          `occurredAt lies ${Math.round((occurredAtMs - nowMs) / 1000)} s ahead of the engine's clock (at most ${Math.round(this.#d.maxClockSkewMs / 1000)} s allowed)`,
        );
      }
      const trigger: Trigger = {
        eventId: event.eventId,
        topic: baseTopic,
        occurredAt: event.occurredAt,
        ...('raisedBy' in event && typeof event.raisedBy === 'string' ? { actor: event.raisedBy } : {}),
      };
      const ctx: DeriveContext = {
        settings: this.#d.policy.signals,
        hash: this.#d.hash,
        trigger,
        tenantId: event.tenantId ?? null,
        nowMs,
      };
      const tenant = event.tenantId === undefined ? null : { id: event.tenantId, at: occurredAtMs };
      this.#d.metrics.decoded.inc({ topic: baseTopic, encoding: decoded.encoding });
      return { ok: true, msg, role, plan: plan(role, event, ctx), ctx, tenant };
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

  handle(messages: readonly InboundMessage[]): Promise<BatchResult> {
    return timedBatch(this.#d.metrics, 'router', () => this.#handle(messages));
  }

  async #handle(messages: readonly InboundMessage[]): Promise<BatchResult> {
    const nowMs = this.#now();
    const held = this.#d.guard.hold();
    if (held) return { processed: 0, retryAfterMs: this.#d.retryBackoffMs, reason: held.code };
    const pass = this.#d.guard.begin();
    observeWait(this.#d.metrics, 'router', messages, nowMs);
    // Decode first: only a schema id missing from the cache awaits the registry.
    const prepared: Prepared[] = [];
    let stoppedBy: AssuranceError | undefined;
    for (const msg of messages) {
      let p = await this.#prepare(msg, nowMs);
      if (!p.ok && dispositionOf(p.error.code) !== 'dead_letter') {
        const given = this.#givenUp(p.msg, p.error, nowMs);
        if (!given) {
          stoppedBy = p.error;
          break;
        }
        p = { ...p, error: given };
      }
      prepared.push(p);
    }
    // Issued in order without awaiting each: ioredis pipelines them and Redis runs them in order.
    const settled = await Promise.allSettled(prepared.map((p) => this.#outputsOf(p, nowMs)));
    const out: OutboundMessage[] = [];
    let processed = 0;
    for (const [i, s] of settled.entries()) {
      const p = prepared[i] as Prepared;
      if (s.status === 'fulfilled') {
        out.push(...s.value);
      } else {
        const err = asAssuranceError(s.reason, 'redis_unavailable');
        const given = this.#givenUp(p.msg, err, nowMs);
        // Only what precedes the first failure is done; the rest is redelivered (and deduplicated).
        if (!given) {
          stoppedBy = err;
          break;
        }
        const dead: Prepared = { ok: false, msg: p.msg, role: p.role, error: given };
        prepared[i] = dead;
        out.push(...(await this.#outputsOf(dead, nowMs)));
      }
      this.#budget.done(p.msg);
      processed++;
    }
    // Nothing leaves if the store lost data while the batch ran: what it read may predate the loss.
    const lost = await this.#d.guard.verify(pass);
    if (lost) {
      this.#d.metrics.failures.inc({ stage: 'router', error: lost.code });
      this.#d.logger.warn(
        { code: lost.code, err: lost.message },
        'router batch dropped: the store changed under it',
      );
      return { processed: 0, retryAfterMs: this.#d.retryBackoffMs, reason: lost.code };
    }
    const dlq = out.filter((m) => m.topic === this.#d.topics.dlq);
    await this.#d.producer.send(out.filter((m) => m.topic !== this.#d.topics.dlq));
    await this.#d.deadLetters.write(dlq);
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
    return stoppedBy ? stoppedEarly(this.#d, 'router', processed, stoppedBy) : { processed };
  }

  /**
   * Whether to stop retrying a message that keeps failing, and the error to dead-letter it with.
   * Infrastructure errors are retried for as long as they last (skipping would lose the event; the
   * read path reports the stall). A failure of the message itself (a script or code path that throws
   * on it) is retried for RETRY_BUDGET, then dead-lettered, and its subject fails closed, so one
   * message holds back its partition for a bounded time and never relaxes anyone's requirement.
   */
  #givenUp(msg: InboundMessage, err: AssuranceError, nowMs: number): AssuranceError | undefined {
    if (dispositionOf(err.code) === 'stop') throw err;
    if (dispositionOf(err.code) !== 'quarantine') return undefined;
    if (!this.#budget.spent(msg, nowMs)) return undefined;
    this.#d.logger.error(
      { topic: msg.topic, partition: msg.partition, offset: msg.offset, code: err.code, reason: err.message },
      'message kept failing for the whole retry budget; dead-lettering it and failing its subject closed',
    );
    return err;
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
      return [
        deadLetter(this.#d.topics.dlq, p.msg, p.error, this.#d.dlqMaxBytes),
        ...(await this.#failClosed(p.msg, p.role, nowMs)),
      ];
    }
    return (await this.#execute(p.plan, p.ctx, p.tenant, nowMs)).map((r) => this.#routed(r));
  }

  /**
   * A dead-lettered message about a security-relevant subject we can still tell from its key fails
   * that subject closed (signal_unreadable): a SIM swap, mailbox change, device, binding or SOC
   * signal we could not read may be exactly the trace of a takeover. Logins are not: they only feed
   * heuristics, and a noisy producer must not hold every identity.
   */
  async #failClosed(
    msg: InboundMessage,
    role: InputRole | undefined,
    nowMs: number,
  ): Promise<OutboundMessage[]> {
    if (role === undefined || role === 'login') return [];
    const subject = subjectOf(role, msg.key);
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
      tenantId: null,
      nowMs,
    };
    const planned = derivePoisonedSignal(subject.type, subject.value, ctx);
    if (!planned) return [];
    this.#d.logger.warn({ subjectType: subject.type, role }, 'unreadable message: its subject fails closed');
    return (await this.#execute(planned, ctx, null, nowMs)).map((r) => this.#routed(r));
  }

  async #execute(
    p: Plan,
    ctx: DeriveContext,
    tenant: TenantMark | null,
    nowMs: number,
  ): Promise<RoutedMessage[]> {
    const apply = (
      identityId: string,
      mutations: readonly Mutation[],
      joinedUntilMs?: number,
      ownTenant: TenantMark | null = tenant,
    ): RoutedMessage => ({
      v: 2,
      kind: 'apply',
      identityId,
      tenant: ownTenant,
      trigger: ctx.trigger,
      receivedAtMs: nowMs,
      mutations,
      ...(joinedUntilMs === undefined ? {} : { joinedUntilMs }),
    });
    switch (p.kind) {
      case 'identity':
        return [apply(p.identityId, p.mutations)];
      case 'channel': {
        const r = await this.#d.store.channelSignal(p.channelRef, p.mutations, nowMs, {
          pageSize: this.#d.fanoutPageSize,
          generation: fanoutGeneration(),
          trigger: JSON.stringify(ctx.trigger),
        });
        // The members past the first page are reached from the fan-out queue (fanout.ts). Queued
        // again on every delivery: a crash between the script and this call loses no fan-out.
        if (r.pending !== null) {
          await this.#d.store.scheduleFanout(p.channelRef, r.pending, nowMs);
          this.#d.onFanoutQueued?.();
        }
        const applies = channelApplies(r.members, r.records, ctx.trigger, nowMs);
        if (r.records.length > 0) this.#d.metrics.fanout.observe(applies.length);
        return applies;
      }
      case 'binding': {
        // The identity just had an event, so its state lives at least STATE_TTL from now: its
        // memberships are written that long (plus the margin), and its owner extends them later.
        const keepUntil = membershipUntil(
          nowMs + this.#d.store.options.stateTtlMs,
          this.#d.store.options.stateTtlMs,
        );
        const writes = [
          this.#d.store.channelBind(
            p.channelRef,
            { identityId: p.identityId, via: null },
            p.op,
            p.occurredAtMs,
            keepUntil,
            nowMs,
          ),
          ...p.routes.map((route) =>
            this.#d.store.channelBind(
              route,
              { identityId: p.identityId, via: p.channelRef },
              p.op,
              p.occurredAtMs,
              keepUntil,
              nowMs,
            ),
          ),
        ];
        const [direct, ...routes] = await Promise.all(writes);
        if (p.op !== 'bound') return [apply(p.identityId, p.mutations, keepUntil)];
        // What a route's channel hands on is taken only if the sync account, once applied, still
        // has that route (the bind may be older than the one on record).
        // Handed on as through a membership made by this bind: taken only if it holds (identity-apply).
        const mop = p.occurredAtMs;
        const inherited: Mutation[] = [
          ...recordMutations(direct?.signals ?? []).map((m) => ({ ...m, mop }) as Mutation),
          ...routes.flatMap((r) =>
            recordMutations(r.signals).map((m) => ({ ...m, mop, via: p.channelRef }) as Mutation),
          ),
        ];
        return [apply(p.identityId, [...p.mutations, ...inherited], keepUntil)];
      }
      case 'login': {
        const e = p.event;
        const network = e.country || e.asn !== undefined ? `${e.country ?? '?'}|${e.asn ?? '?'}` : null;
        const login = {
          outcome: e.outcome,
          authenticator: e.authenticator,
          deviceId: e.deviceId ? this.#d.hash('device', e.deviceId) : null,
          network,
          occurredAtMs: Date.parse(e.occurredAt),
        };
        return [
          {
            v: 2,
            kind: 'login',
            identityId: p.identityId,
            tenant,
            trigger: ctx.trigger,
            receivedAtMs: nowMs,
            login: { ...login, h: loginDigest({ eventId: e.eventId, ...login }) },
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
