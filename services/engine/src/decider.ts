import type { Logger } from '@assurance/core';
import { AssuranceError, asAssuranceError, dispositionOf } from '@assurance/core';
import type { BatchResult, InboundMessage, OutboundMessage, ProducerPort } from '@assurance/kafka';
import type { Evaluation, Policy } from '@assurance/policy';
import { evaluate, failClosedEvaluation } from '@assurance/policy';
import type { LoadedIdentity, SignalStore } from '@assurance/redis';
import { toIdentityState } from '@assurance/redis';
import type { AuditRecord, Decision } from '@assurance/schemas';
import { buildAudit, buildDecision, materialOf, nextRedecisionMs } from './decision.ts';
import { loginKinds, loginMutations, loginWindows } from './login-signals.ts';
import type { EngineMetrics } from './metrics.ts';
import type { RoutedMessage } from './routed.ts';
import type { TopicNames } from './topics.ts';

export interface DeciderDeps {
  readonly store: SignalStore;
  readonly producer: ProducerPort;
  readonly policy: Policy;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  readonly retryBackoffMs: number;
  readonly clock?: () => Date;
}

interface Item {
  readonly index: number;
  readonly routed: RoutedMessage;
}

interface GroupResult {
  readonly identityId: string;
  readonly out: OutboundMessage[];
  readonly acks: number[];
  readonly receivedAt: number[];
  readonly nextDueMs: number | null | undefined;
  readonly failedAt?: number;
  readonly error?: AssuranceError;
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

  constructor(deps: DeciderDeps) {
    this.#d = deps;
    this.#now = deps.clock ?? (() => new Date());
  }

  async handle(messages: readonly InboundMessage[]): Promise<BatchResult> {
    const groups = new Map<string, Item[]>();
    messages.forEach((m, index) => {
      let routed: RoutedMessage;
      try {
        routed = JSON.parse(m.value?.toString('utf8') ?? '') as RoutedMessage;
        if (routed?.v !== 1 || typeof routed.identityId !== 'string')
          throw new Error('not a v1 routed message');
      } catch (err) {
        // Only our router writes here: a bad message is a bug, logged loudly and skipped.
        this.#d.logger.error(
          { err, partition: m.partition, offset: m.offset },
          'unreadable internal message',
        );
        return;
      }
      const list = groups.get(routed.identityId) ?? [];
      list.push({ index, routed });
      groups.set(routed.identityId, list);
    });

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

  #messagesFor(decision: Decision, audit: AuditRecord): OutboundMessage[] {
    const headers = { 'content-type': 'application/json', 'x-sequence': String(decision.sequence) };
    return [
      { topic: this.#d.topics.decisions, key: decision.identityId, value: JSON.stringify(decision), headers },
      { topic: this.#d.topics.audit, key: decision.identityId, value: JSON.stringify(audit), headers },
    ];
  }

  async #identity(identityId: string, items: readonly Item[]): Promise<GroupResult> {
    const { store, policy } = this.#d;
    const out: OutboundMessage[] = [];
    const acks: number[] = [];
    const receivedAt: number[] = [];
    let nextDueMs: number | null | undefined;
    // Applying an event never touches the sequence or the outbox, so the state read after the first
    // apply also tells whether a decision stored before a crash still awaits publication.
    let pendingChecked = false;
    for (const { index, routed } of items) {
      try {
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
        if (!pendingChecked) {
          pendingChecked = true;
          // A decision stored but not acknowledged by Kafka before a crash goes out first.
          if (loaded.outbox && loaded.seq > loaded.published) {
            const pending = JSON.parse(loaded.outbox) as {
              sequence: number;
              decision: Decision;
              audit: AuditRecord;
            };
            out.push(...this.#messagesFor(pending.decision, pending.audit));
            acks.push(pending.sequence);
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
        if (before && materialOf(before) === materialOf(candidate)) {
          nextDueMs = nextRedecisionMs(before, nowMs);
          continue;
        }
        const audit = buildAudit(before, candidate, evaluation, now);
        const decisionJson = JSON.stringify(candidate);
        const outboxJson = JSON.stringify({ sequence: candidate.sequence, decision: candidate, audit });
        if (!(await store.commitDecision(identityId, loaded.seq, decisionJson, outboxJson))) {
          throw new AssuranceError('stale_write', 'decision sequence moved under us (another owner?)');
        }
        out.push(...this.#messagesFor(candidate, audit));
        acks.push(candidate.sequence);
        receivedAt.push(routed.receivedAtMs);
        nextDueMs = nextRedecisionMs(candidate, nowMs);
        this.#d.metrics.decisions.inc({ risk: candidate.riskLevel });
        for (const [tier, req] of Object.entries(candidate.tiers)) {
          this.#d.metrics.tierOutcomes.inc({ tier, outcome: req.outcome });
        }
      } catch (err) {
        return {
          identityId,
          out,
          acks,
          receivedAt,
          nextDueMs,
          failedAt: index,
          error: asAssuranceError(err, 'redis_unavailable'),
        };
      }
    }
    return { identityId, out, acks, receivedAt, nextDueMs };
  }
}
