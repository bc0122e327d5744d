import type { Logger } from '@assurance/core';
import { AssuranceError, asAssuranceError, dispositionOf } from '@assurance/core';
import type { BatchResult, InboundMessage, OutboundMessage, ProducerPort } from '@assurance/kafka';
import { UNDECODABLE_DETAIL_HEADER, UNDECODABLE_HEADER } from '@assurance/kafka';
import type { Evaluation, Policy } from '@assurance/policy';
import { evaluate, failClosedEvaluation } from '@assurance/policy';
import type { LoadedIdentity, SignalStore } from '@assurance/redis';
import { toIdentityState } from '@assurance/redis';
import type { AuditRecord, Decision } from '@assurance/schemas';
import { strictUtf8 } from '@assurance/schemas';
import { buildAudit, buildDecision, materialOf, nextRedecisionMs, renewLeadMs } from './decision.ts';
import { unreadableMutation } from './derive.ts';
import { type DeadLetterSink, deadLetter } from './dlq.ts';
import { loginKinds, loginMutations, loginWindows } from './login-signals.ts';
import type { EngineMetrics } from './metrics.ts';
import { RetryBudget } from './retry-budget.ts';
import type { RoutedMessage } from './routed.ts';
import type { TopicNames } from './topics.ts';
import { BASE_TOPICS } from './topics.ts';

export interface DeciderDeps {
  readonly store: SignalStore;
  readonly producer: ProducerPort;
  readonly policy: Policy;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  readonly retryBackoffMs: number;
  /** How long an internal message that itself keeps failing is retried before it is dead-lettered. */
  readonly retryBudgetMs: number;
  readonly dlqMaxBytes: number;
  readonly deadLetters: DeadLetterSink;
  readonly clock?: () => Date;
}

interface Item {
  readonly index: number;
  readonly msg: InboundMessage;
  readonly routed: RoutedMessage;
  /** Written once the item is done: the dead letter of an unreadable message it stands in for. */
  readonly deadLetter?: OutboundMessage;
}

/** A key as an identity id: strict UTF-8, or nothing. */
function keyText(key: Buffer | null): string | undefined {
  if (!key || key.length === 0) return undefined;
  try {
    return strictUtf8(key, 'key');
  } catch {
    return undefined;
  }
}

/** What the steps of one identity's events accumulate. */
interface GroupState {
  out: OutboundMessage[];
  dlq: OutboundMessage[];
  acks: number[];
  receivedAt: number[];
  nextDueMs: number | null | undefined;
  /** Applying never touches the outbox, so the first read after an apply tells whether one is pending. */
  pendingChecked: boolean;
}

interface GroupResult {
  readonly identityId: string;
  readonly out: OutboundMessage[];
  readonly dlq: OutboundMessage[];
  readonly acks: number[];
  readonly receivedAt: number[];
  readonly nextDueMs: number | null | undefined;
  readonly failedAt?: number;
  readonly error?: AssuranceError;
}

/** Why an internal message cannot be used, or the message. */
function readRouted(m: InboundMessage): RoutedMessage | AssuranceError {
  const undecodable = m.headers[UNDECODABLE_HEADER];
  if (undecodable !== undefined) {
    return new AssuranceError(
      undecodable === 'compression_too_large' ? undecodable : 'compression_invalid',
      m.headers[UNDECODABLE_DETAIL_HEADER] ?? 'record batch cannot be decompressed',
    );
  }
  try {
    const routed = JSON.parse(m.value?.toString('utf8') ?? '') as RoutedMessage;
    if (routed?.v !== 1 || typeof routed.identityId !== 'string') throw new Error('not a v1 routed message');
    return routed;
  } catch (err) {
    return new AssuranceError('validation_failed', `unreadable internal message: ${(err as Error).message}`);
  }
}

/**
 * Stage two: owns each identity through the internal identity-keyed topic, so an identity's
 * decisions are made and produced in order. Per batch: identities run concurrently, each one's
 * events in order; every decision lands in Redis with an outbox entry before it is produced, and
 * offsets are committed only after Kafka acknowledged, so a crash anywhere loses no decision.
 */
export class Decider {
  readonly #d: DeciderDeps;
  readonly #now: () => Date;
  readonly #budget: RetryBudget;

  constructor(deps: DeciderDeps) {
    this.#d = deps;
    this.#now = deps.clock ?? (() => new Date());
    this.#budget = new RetryBudget(deps.retryBudgetMs);
  }

  async handle(messages: readonly InboundMessage[]): Promise<BatchResult> {
    const groups = new Map<string, Item[]>();
    /** Unreadable messages with no identity to fail closed: written if the batch gets past them. */
    const orphans: Array<{ index: number; record: OutboundMessage }> = [];
    const add = (identityId: string, item: Item) => {
      const list = groups.get(identityId) ?? [];
      list.push(item);
      groups.set(identityId, list);
    };
    for (const [index, msg] of messages.entries()) {
      const routed = readRouted(msg);
      if (!(routed instanceof AssuranceError)) {
        add(routed.identityId, { index, msg, routed });
        continue;
      }
      // Only our router writes here, so this is a bug or someone else writing to our topic: kept in
      // the dead-letter topic and counted, never skipped, and its identity (the key) fails closed.
      this.#d.metrics.deadLetters.inc({ topic: BASE_TOPICS.identityEvents, error: routed.code });
      this.#d.logger.error(
        { partition: msg.partition, offset: msg.offset, code: routed.code, reason: routed.message },
        'unreadable internal message: dead-lettered, its identity fails closed',
      );
      const record = deadLetter(this.#d.topics.dlq, msg, routed, this.#d.dlqMaxBytes);
      const identityId = keyText(msg.key);
      if (identityId === undefined) orphans.push({ index, record });
      else add(identityId, { index, msg, routed: this.#poisoned(msg, identityId), deadLetter: record });
    }

    const results = await Promise.all([...groups].map(([id, items]) => this.#identity(id, items)));
    let processed = messages.length;
    let error: AssuranceError | undefined;
    for (const r of results) {
      if (r.failedAt !== undefined && r.failedAt < processed) {
        processed = r.failedAt;
        error = r.error;
      }
    }
    if (error && dispositionOf(error.code) === 'stop') throw error;

    await this.#d.producer.send(results.flatMap((r) => r.out));
    await this.#d.deadLetters.write([
      ...orphans.filter((o) => o.index < processed).map((o) => o.record),
      ...results.flatMap((r) => r.dlq),
    ]);
    const ackedAt = Date.now();
    await Promise.all(
      results.flatMap((r) => [
        ...r.acks.map((seq) => this.#d.store.ackOutbox(r.identityId, seq)),
        ...(r.nextDueMs === undefined ? [] : [this.#d.store.schedule(r.identityId, r.nextDueMs)]),
      ]),
    );
    for (const r of results)
      for (const t of r.receivedAt) this.#d.metrics.latency.observe((ackedAt - t) / 1000);

    if (error) {
      this.#d.metrics.failures.inc({ stage: 'decider', error: error.code });
      this.#d.logger.warn(
        { code: error.code, err: error.message },
        'decider batch stopped early; will retry',
      );
      return { processed, retryAfterMs: this.#d.retryBackoffMs, reason: error.code };
    }
    return { processed };
  }

  /** The identity's fail-closed mark, applied in place of a message that cannot be applied. */
  #poisoned(msg: InboundMessage, identityId: string): RoutedMessage {
    const nowMs = this.#now().getTime();
    const eventId = `dlq:${msg.topic}:${msg.partition}:${msg.offset}`;
    return {
      v: 1,
      kind: 'apply',
      identityId,
      tenantId: null,
      eventKey: `dlq|${msg.topic}:${msg.partition}:${msg.offset}`,
      trigger: { eventId, topic: BASE_TOPICS.dlq, occurredAt: new Date(nowMs).toISOString() },
      receivedAtMs: nowMs,
      mutations: [unreadableMutation(this.#d.policy.signals, 'identity', null, eventId, nowMs)],
    };
  }

  #messagesFor(decision: Decision, audit: AuditRecord): OutboundMessage[] {
    const headers = { 'content-type': 'application/json', 'x-sequence': String(decision.sequence) };
    return [
      { topic: this.#d.topics.decisions, key: decision.identityId, value: JSON.stringify(decision), headers },
      { topic: this.#d.topics.audit, key: decision.identityId, value: JSON.stringify(audit), headers },
    ];
  }

  async #identity(identityId: string, items: readonly Item[]): Promise<GroupResult> {
    const g: GroupState = {
      out: [],
      dlq: [],
      acks: [],
      receivedAt: [],
      nextDueMs: undefined,
      pendingChecked: false,
    };
    const result = (failedAt?: number, error?: AssuranceError): GroupResult => ({
      identityId,
      out: g.out,
      dlq: g.dlq,
      acks: g.acks,
      receivedAt: g.receivedAt,
      nextDueMs: g.nextDueMs,
      ...(failedAt === undefined || error === undefined ? {} : { failedAt, error }),
    });
    for (const item of items) {
      try {
        await this.#step(identityId, item.routed, g);
      } catch (err) {
        const error = asAssuranceError(err, 'redis_unavailable');
        if (!this.#givenUp(item.msg, error)) return result(item.index, error);
        // The message fails by itself: it goes to the dead-letter topic and its identity fails
        // closed in its place. If even that cannot be applied, the partition waits (and the read
        // path reports the stall) rather than relax anything.
        try {
          await this.#step(identityId, this.#poisoned(item.msg, identityId), g);
        } catch (again) {
          return result(item.index, asAssuranceError(again, 'redis_unavailable'));
        }
        this.#d.metrics.quarantined.inc({ stage: 'decider', error: error.code });
        g.dlq.push(deadLetter(this.#d.topics.dlq, item.msg, error, this.#d.dlqMaxBytes));
      }
      if (item.deadLetter) g.dlq.push(item.deadLetter);
      this.#budget.done(item.msg);
    }
    return result();
  }

  /** See Router#givenUp: infrastructure errors wait, a message failing by itself is given up after the budget. */
  #givenUp(msg: InboundMessage, err: AssuranceError): boolean {
    if (dispositionOf(err.code) === 'stop') throw err;
    if (dispositionOf(err.code) !== 'quarantine') return false;
    if (!this.#budget.spent(msg, Date.now())) return false;
    this.#d.logger.error(
      { partition: msg.partition, offset: msg.offset, code: err.code, reason: err.message },
      'internal message kept failing for the whole retry budget; dead-lettering it and failing its identity closed',
    );
    return true;
  }

  /** One event of an identity: apply it, evaluate, and commit and queue a decision if it changed. */
  async #step(identityId: string, routed: RoutedMessage, g: GroupState): Promise<void> {
    const { store, policy } = this.#d;
    const now = this.#now();
    const nowMs = now.getTime();
    let changed = true;
    if (routed.kind === 'login') {
      const s = policy.signals;
      const login = routed.login;
      const seen = await store.observeLogin(identityId, {
        eventKey: routed.eventKey,
        occurredAtMs: login.occurredAtMs,
        memoryMs: s.login_anomaly.memoryMs,
        windows: loginWindows(s),
        record: loginKinds(s, login),
        deviceId: login.deviceId,
        network: login.network,
        success: login.outcome === 'success',
      });
      const mutations = loginMutations(s, login, seen, routed.trigger.eventId);
      changed = await store.applyIdentity(identityId, routed.eventKey, mutations, routed.tenantId, nowMs);
    } else if (routed.kind === 'apply') {
      changed = await store.applyIdentity(
        identityId,
        routed.eventKey,
        routed.mutations,
        routed.tenantId,
        nowMs,
      );
    }
    // A replay changes no state, but is still decided: a crash after the state write and before
    // the decision commit leaves exactly this case behind, and only re-deciding repairs it. An
    // unchanged decision is not published again (materialOf below).
    if (!changed) this.#d.metrics.dedupeHits.inc();
    const loaded: LoadedIdentity = await store.loadIdentity(identityId);
    if (!g.pendingChecked) {
      g.pendingChecked = true;
      // A decision stored but not acknowledged by Kafka before a crash goes out first.
      if (loaded.outbox && loaded.seq > loaded.published) {
        const pending = JSON.parse(loaded.outbox) as {
          sequence: number;
          decision: Decision;
          audit: AuditRecord;
        };
        g.out.push(...this.#messagesFor(pending.decision, pending.audit));
        g.acks.push(pending.sequence);
      }
    }
    const state = toIdentityState(identityId, loaded, nowMs);
    let evaluation: Evaluation;
    try {
      evaluation = evaluate(policy, state, now);
    } catch (err) {
      // Never fail open: an evaluation error yields the strictest requirement.
      this.#d.logger.error({ err }, 'policy evaluation failed; deciding fail-closed');
      evaluation = failClosedEvaluation(policy, now);
    }
    const before = loaded.decision ? (JSON.parse(loaded.decision) as Decision) : null;
    const candidate = buildDecision({
      policy,
      state,
      evaluation,
      sequence: loaded.seq + 1,
      trigger: routed.trigger,
      now,
    });
    const renewLead = renewLeadMs(policy.evaluation.stalenessMs);
    // Unchanged: nothing to publish, unless the decision is about to lapse for topic readers.
    if (
      before &&
      materialOf(before) === materialOf(candidate) &&
      nowMs < Date.parse(before.validUntil) - renewLead
    ) {
      g.nextDueMs = nextRedecisionMs(before, nowMs, renewLead);
      return;
    }
    const audit = buildAudit(before, candidate, evaluation, now);
    const decisionJson = JSON.stringify(candidate);
    const outboxJson = JSON.stringify({ sequence: candidate.sequence, decision: candidate, audit });
    if (!(await store.commitDecision(identityId, loaded.seq, decisionJson, outboxJson))) {
      throw new AssuranceError('stale_write', 'decision sequence moved under us (another owner?)');
    }
    g.out.push(...this.#messagesFor(candidate, audit));
    g.acks.push(candidate.sequence);
    g.receivedAt.push(routed.receivedAtMs);
    g.nextDueMs = nextRedecisionMs(candidate, nowMs, renewLead);
    this.#d.metrics.decisions.inc({ risk: candidate.riskLevel });
    for (const [tier, req] of Object.entries(candidate.tiers)) {
      this.#d.metrics.tierOutcomes.inc({ tier, outcome: req.outcome });
    }
  }
}
