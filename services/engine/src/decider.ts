import { createHash } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { AssuranceError, asAssuranceError, dispositionOf } from '@assurance/core';
import type { BatchResult, InboundMessage, Landed, OutboundMessage, ProducerPort } from '@assurance/kafka';
import { UNDECODABLE_DETAIL_HEADER, UNDECODABLE_HEADER } from '@assurance/kafka';
import type { Evaluation, Policy } from '@assurance/policy';
import { evaluate } from '@assurance/policy';
import type { IdentityRecord, StateStore } from '@assurance/redis';
import { emptyState, epochOf, nextSequence, toIdentityState } from '@assurance/redis';
import {
  type AuditRecord,
  BASE_TOPICS,
  type Decision,
  type DecisionSigner,
  type DecisionV2,
  RoutedMessage,
  SIGNATURE_HEADER,
  strictUtf8,
  type TopicNames,
} from '@assurance/schemas';
import {
  auditText,
  buildAudit,
  buildDecision,
  digestOf,
  nextRedecisionMs,
  renewLeadMs,
  toDecisionV2,
} from './decision.ts';
import { decisionLogicDigest } from './decision-logic.ts';
import { unreadableMutation } from './derive.ts';
import { deadLetter } from './dlq.ts';
import { loginMutations, loginRecord } from './login-signals.ts';
import { heldChannels, membershipDue, membershipUntil } from './membership.ts';
import type { EngineMetrics } from './metrics.ts';
import { observeWait, stoppedEarly, timedBatch } from './metrics.ts';
import { type FailurePolicy, RetryBudget } from './retry-budget.ts';
import type { ShadowJob, ShadowSink } from './shadow.ts';
import type { BatchGuard } from './store-guard.ts';

export interface DeciderDeps extends FailurePolicy {
  readonly store: StateStore;
  /** Guards every batch against a store that lost data, and gives the epoch sequences carry. */
  readonly guard: BatchGuard;
  readonly producer: ProducerPort;
  readonly policy: Policy;
  /** The format decisions are published in (config DECISION_FORMAT); v1 when absent. */
  readonly decisionFormat?: 'v1' | 'v2';
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  /** Signs every decision record (docs/contract.md#signed-decisions). */
  readonly signer: DecisionSigner;
  /** Shadow policies: handed each decision once Kafka acknowledged it (shadow.ts). */
  readonly shadow?: ShadowSink | undefined;
  readonly clock?: () => Date;
}

interface Item {
  readonly index: number;
  readonly msg: InboundMessage;
  readonly routed: RoutedMessage;
  /** Written once the item is done: the dead letter of an unreadable message it stands in for. */
  readonly deadLetter?: OutboundMessage;
}

/** Read once per process: the sources do not change under a running engine. */
const LOGIC = decisionLogicDigest();

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
  acks: Ack[];
  shadows: ShadowJob[];
  receivedAt: number[];
  nextDueMs: number | null | undefined;
}

/** A decision produced: recorded as published once Kafka acknowledged it. */
interface Ack {
  readonly seq: number;
  readonly digest: string;
}

interface GroupResult {
  readonly identityId: string;
  readonly out: OutboundMessage[];
  readonly dlq: OutboundMessage[];
  readonly acks: Ack[];
  readonly shadows: ShadowJob[];
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
  let raw: unknown;
  try {
    raw = JSON.parse(m.value?.toString('utf8') ?? '');
  } catch {
    // Never the parser's own text: it quotes the input, which may hold what no log may show.
    return new AssuranceError('invalid_json', 'internal message is not JSON');
  }
  // Written by our router only, yet read like any input: a message that fails its schema (a bug,
  // a v1 message from an engine before the current state model, or a write by someone else) is
  // never applied.
  const routed = RoutedMessage.safeParse(raw);
  if (routed.success) return routed.data;
  const where = routed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '<root>'}: ${i.code}`)
    .join('; ');
  return new AssuranceError('validation_failed', `internal message fails its schema (${where})`);
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
  /** Recorded with each decision: the policy and the code it was made under (see #settled). */
  readonly #policyTag: string;

  constructor(deps: DeciderDeps) {
    this.#d = deps;
    this.#now = deps.clock ?? (() => new Date());
    this.#budget = new RetryBudget(deps.retryBudgetMs);
    this.#policyTag = createHash('sha256')
      .update(`${deps.policy.digest}|${LOGIC}`)
      .digest('base64url')
      .slice(0, 11);
  }

  handle(messages: readonly InboundMessage[]): Promise<BatchResult> {
    return timedBatch(this.#d.metrics, 'decider', () => this.#handle(messages));
  }

  /**
   * One batch: group by identity, apply and decide each identity's events in order (identities
   * concurrently), check that the store held meanwhile, publish, record what Kafka acknowledged.
   */
  async #handle(messages: readonly InboundMessage[]): Promise<BatchResult> {
    const held = this.#d.guard.hold();
    if (held) return { processed: 0, retryAfterMs: this.#d.retryBackoffMs, reason: held.code };
    const pass = this.#d.guard.begin();
    observeWait(this.#d.metrics, 'decider', messages, this.#now().getTime());
    const { groups, orphans } = this.#group(messages);
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

    // Nothing leaves if the store lost data while the batch ran (its decisions may rest on state
    // that is gone) or moved to a new epoch (their sequences would be outranked).
    const lost = await this.#d.guard.verify(pass);
    if (lost) {
      this.#d.metrics.failures.inc({ stage: 'decider', error: lost.code });
      this.#d.logger.warn(
        { code: lost.code, err: lost.message },
        'decider batch dropped: the store changed under it',
      );
      return { processed: 0, retryAfterMs: this.#d.retryBackoffMs, reason: lost.code };
    }
    await this.#publish(
      results,
      orphans.filter((o) => o.index < processed).map((o) => o.record),
    );
    return error ? stoppedEarly(this.#d, 'decider', processed, error) : { processed };
  }

  /**
   * The batch's messages per identity, in order. An unreadable one is dead-lettered: in place of it,
   * its identity (the key) fails closed; one without a key is an orphan, only dead-lettered.
   */
  #group(messages: readonly InboundMessage[]): {
    groups: Map<string, Item[]>;
    orphans: Array<{ index: number; record: OutboundMessage }>;
  } {
    const groups = new Map<string, Item[]>();
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
    return { groups, orphans };
  }

  /**
   * Produces the decisions and audit records, then the dead letters, and records in Redis what
   * Kafka acknowledged (and each identity's next timer): until then, a decision is owed and made
   * again from the state after a crash.
   */
  async #publish(results: readonly GroupResult[], orphans: readonly OutboundMessage[]): Promise<void> {
    const out = results.flatMap((r) => r.out);
    // Each decision's offset tells the store which one stands last on the topic (what compaction
    // keeps); a producer that cannot say sends without them.
    let offsets: readonly Landed[] = [];
    if (this.#d.producer.sendWithOffsets) offsets = await this.#d.producer.sendWithOffsets(out);
    else await this.#d.producer.send(out);
    // Acknowledged: the shadows may look at these decisions now, off this path.
    this.#d.shadow?.submit(results.flatMap((r) => r.shadows));
    // Decisions are produced in the order of their acknowledgements, result by result.
    const decisionOffsets = out.flatMap((m, i) => (m.topic === this.#d.topics.decisions ? [offsets[i]] : []));
    let taken = 0;
    const offsetsOf = results.map((r) => {
      const mine = decisionOffsets.slice(taken, taken + r.acks.length);
      taken += r.acks.length;
      return mine;
    });
    await this.#d.deadLetters.write([...orphans, ...results.flatMap((r) => r.dlq)]);
    const ackedAt = Date.now();
    await Promise.all(
      results.flatMap((r, k) => [
        ...r.acks.map(async (a, i) => {
          const offset = offsetsOf[k]?.[i];
          const result = await this.#d.store.published(r.identityId, a.seq, a.digest, offset);
          // Only the identity's last decision of the batch says what stands last on the topic.
          if (result !== 'superseded' || i !== r.acks.length - 1) return;
          // An older decision stands last on the topic: the identity's owner sends the newest again
          // now (it is owed), so the record compaction keeps is the newest. Issued after the
          // schedule below (which went out before this acknowledgement was recorded), so it wins.
          this.#d.metrics.supersededLate.inc();
          await this.#d.store.schedule(r.identityId, ackedAt);
        }),
        ...(r.nextDueMs === undefined ? [] : [this.#d.store.schedule(r.identityId, r.nextDueMs)]),
      ]),
    );
    for (const r of results)
      for (const t of r.receivedAt) this.#d.metrics.latency.observe((ackedAt - t) / 1000);
  }

  /** The identity's fail-closed mark, applied in place of a message that cannot be applied. */
  #poisoned(msg: InboundMessage, identityId: string): RoutedMessage {
    const nowMs = this.#now().getTime();
    const eventId = `dlq:${msg.topic}:${msg.partition}:${msg.offset}`;
    return {
      v: 2,
      kind: 'apply',
      identityId,
      tenant: null,
      trigger: { eventId, topic: BASE_TOPICS.dlq, occurredAt: new Date(nowMs).toISOString() },
      receivedAtMs: nowMs,
      mutations: [unreadableMutation(this.#d.policy.signals, 'identity', null, eventId, nowMs)],
    };
  }

  #messagesFor(decision: Decision | DecisionV2, audit: AuditRecord): OutboundMessage[] {
    const headers = { 'content-type': 'application/json', 'x-sequence': String(decision.sequence) };
    const text = JSON.stringify(decision);
    const signed = { ...headers, [SIGNATURE_HEADER]: this.#d.signer.sign(text, decision.sequence) };
    return [
      { topic: this.#d.topics.decisions, key: decision.identityId, value: text, headers: signed },
      { topic: this.#d.topics.audit, key: decision.identityId, value: auditText(audit, text), headers },
    ];
  }

  async #identity(identityId: string, items: readonly Item[]): Promise<GroupResult> {
    const g: GroupState = { out: [], dlq: [], acks: [], shadows: [], receivedAt: [], nextDueMs: undefined };
    const result = (failedAt?: number, error?: AssuranceError): GroupResult => ({
      identityId,
      out: g.out,
      dlq: g.dlq,
      acks: g.acks,
      shadows: g.shadows,
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

  /** One event of an identity: apply it, keep its memberships, and decide unless nothing can change. */
  async #step(identityId: string, routed: RoutedMessage, g: GroupState): Promise<void> {
    const now = this.#now();
    const nowMs = now.getTime();
    const applied = await this.#apply(identityId, routed, nowMs);
    let { record } = applied;
    if (!applied.changed) this.#d.metrics.unchanged.inc();
    if (record && applied.horizonMs !== undefined && membershipDue(record, applied.horizonMs)) {
      record = await this.#keepMemberships(identityId, record, applied.horizonMs, nowMs);
    }
    // An event that changed nothing a decision depends on cannot change a settled decision: most
    // logins. Timers ('expire') always decide: time is what they bring.
    if (routed.kind !== 'expire' && !applied.changed && record && this.#settled(record, nowMs)) {
      this.#d.metrics.decisionsSkipped.inc();
      return;
    }
    await this.#decide(identityId, record, routed, now, g);
  }

  /**
   * The event's effect on the identity's state, and the state after it: a login is observed first
   * (its record tells whether it makes a signal), a binding change releases the memberships it
   * withdrew, and a timer only reads, so a quiet identity is not kept alive by it.
   */
  async #apply(
    identityId: string,
    routed: RoutedMessage,
    nowMs: number,
  ): Promise<{ record: IdentityRecord | null; changed: boolean; horizonMs?: number }> {
    const { store, policy } = this.#d;
    if (routed.kind === 'expire') return { record: await store.read(identityId, nowMs), changed: false };
    const tenant = routed.tenant;
    let r: Awaited<ReturnType<StateStore['apply']>>;
    if (routed.kind === 'login') {
      const s = policy.signals;
      r = await store.apply(
        identityId,
        { mutations: [], tenant, login: loginRecord(s, routed.login, routed.login.h) },
        nowMs,
      );
      const mutations = r.observation
        ? loginMutations(s, routed.login, r.observation, routed.trigger.eventId)
        : [];
      if (mutations.length > 0) {
        const again = await store.apply(identityId, { mutations }, nowMs);
        r = { ...again, changed: r.changed || again.changed };
      }
    } else {
      r = await store.apply(
        identityId,
        {
          mutations: routed.mutations,
          tenant,
          ...(routed.joinedUntilMs === undefined ? {} : { joinedUntilMs: routed.joinedUntilMs }),
        },
        nowMs,
      );
      if (r.withdrawn.length > 0) {
        // Unbound at the time of the op that dropped them, so a newer op on the channel stands.
        const keep = membershipUntil(Math.max(r.horizonMs, nowMs), store.options.stateTtlMs);
        await Promise.all(
          r.withdrawn.map((w) =>
            store.channelBind(w.channelRef, { identityId, via: w.syncRef }, 'unbound', w.opMs, keep, nowMs),
          ),
        );
      }
    }
    if (r.changed && r.state?.overflowSinceMs === nowMs) this.#d.metrics.capOverflows.inc();
    return { record: r.state, changed: r.changed, horizonMs: r.horizonMs };
  }

  /**
   * Whether the recorded decision is still what deciding would give, as long as the state did not
   * change: made under this policy and this code, acknowledged by Kafka (nothing owed), in this
   * store epoch, and not due for renewal. Time alone can change a decision (an expiry, a hold's
   * end); the sweeper decides at those times, and past them deciding late keeps the stricter
   * answer, never a laxer.
   */
  #settled(record: IdentityRecord, nowMs: number): boolean {
    const renewLead = renewLeadMs(this.#d.policy.evaluation.stalenessMs);
    return (
      // Made from this very state: a change applied and never decided (a crash between the two)
      // is undecided however many times its event comes again.
      record.decidedVersion === record.stateVersion &&
      record.policyTag === this.#policyTag &&
      record.digest !== null &&
      record.seq > 0 &&
      record.seq === record.published &&
      epochOf(record.seq) === this.#d.guard.epoch &&
      record.validUntilMs !== null &&
      nowMs < record.validUntilMs - renewLead
    );
  }

  /**
   * The identity lives longer than its channels were told: tell them (each channel it holds keeps it
   * as a member until its new horizon), then record that they know.
   */
  async #keepMemberships(
    identityId: string,
    record: IdentityRecord,
    horizonMs: number,
    nowMs: number,
  ): Promise<IdentityRecord | null> {
    const { store } = this.#d;
    const keep = membershipUntil(horizonMs, store.options.stateTtlMs);
    await Promise.all(
      heldChannels(record).map((h) =>
        store.channelBind(h.channelRef, { identityId, via: h.via }, 'touch', h.opMs, keep, nowMs),
      ),
    );
    return (await store.apply(identityId, { mutations: [], membershipUntilMs: keep }, nowMs)).state;
  }

  /**
   * Decides from the state. A decision is recorded (its sequence, digest and validUntil) and
   * produced when its substance differs from the last one recorded, when the last one recorded was
   * never acknowledged by Kafka (a crash between the two: it is made again from the state, never
   * stored), or when its validUntil is near (renewal for topic readers).
   */
  async #decide(
    identityId: string,
    record: IdentityRecord | null,
    routed: RoutedMessage,
    now: Date,
    g: GroupState,
  ): Promise<void> {
    const { store, policy, guard } = this.#d;
    const nowMs = now.getTime();
    const state = record ? toIdentityState(record, nowMs) : emptyState(identityId);
    // Never fail open, and never quietly: a failing evaluation is counted, logged, and decided at
    // the strictest.
    const evaluation: Evaluation = evaluate(policy, state, now, (err) => {
      this.#d.metrics.evaluationFailures.inc();
      this.#d.logger.error({ err }, 'policy evaluation failed; deciding fail-closed');
    });
    const seq = record?.seq ?? 0;
    const fresh = nextSequence(seq, guard.epoch, nowMs);
    let candidate = buildDecision({
      policy,
      state,
      evaluation,
      sequence: fresh,
      trigger: routed.trigger,
      now,
    });
    const digest = digestOf(candidate);
    const renewLead = renewLeadMs(policy.evaluation.stalenessMs);
    if (!record) {
      // No state (never seen, or forgotten once its horizon passed): nothing to record against.
      g.nextDueMs = null;
      return;
    }
    // A decision this batch already produced is on its way, not owed.
    const inFlight = g.acks.at(-1);
    const owed = record.seq > record.published && inFlight?.seq !== record.seq;
    const renewDue = record.validUntilMs !== null && nowMs >= record.validUntilMs - renewLead;
    if (record.digest === digest && !owed && !renewDue) {
      g.nextDueMs = nextRedecisionMs(candidate, nowMs, renewLead);
      return;
    }
    if (owed && record.digest === digest && epochOf(record.seq) === guard.epoch) {
      // Recorded, perhaps published, never acknowledged (a crash in between): the state still gives
      // the same decision, so it goes out again under its own sequence.
      candidate = { ...candidate, sequence: record.seq };
    } else {
      // Anything else is a new decision, with a sequence above every one this identity may have
      // published (a recorded one may have reached the topic even if its acknowledgement did not).
      const committed = await store.commit(
        identityId,
        seq,
        fresh,
        digest,
        Date.parse(candidate.validUntil),
        this.#policyTag,
        record.stateVersion,
      );
      if (committed === 'moved') {
        throw new AssuranceError('stale_write', 'decision sequence moved under us (another owner?)');
      }
      if (committed === 'missing') {
        throw new AssuranceError('store_lost', "the identity's state vanished between apply and commit");
      }
    }
    // The audit chain links published decisions: the previous one is the last produced in this
    // batch, or else the last Kafka acknowledged.
    const previous = inFlight
      ? { sequence: inFlight.seq, digest: inFlight.digest }
      : record.published > 0 && record.publishedDigest !== null
        ? { sequence: record.published, digest: record.publishedDigest }
        : null;
    const published = this.#d.decisionFormat === 'v2' ? toDecisionV2(policy, candidate, state) : candidate;
    const audit = buildAudit(previous, published, evaluation, now);
    g.out.push(...this.#messagesFor(published, audit));
    g.acks.push({ seq: candidate.sequence, digest });
    if (this.#d.shadow)
      g.shadows.push({
        state,
        now,
        live: evaluation,
        sequence: candidate.sequence,
        trigger: candidate.trigger,
      });
    g.receivedAt.push(routed.receivedAtMs);
    g.nextDueMs = nextRedecisionMs(candidate, nowMs, renewLead);
    this.#d.metrics.decisions.inc({ risk: candidate.riskLevel });
    for (const [tier, req] of Object.entries(candidate.tiers)) {
      this.#d.metrics.tierOutcomes.inc({ tier, outcome: req.outcome });
    }
  }
}
