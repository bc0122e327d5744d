import { randomUUID } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { createLogger } from '@assurance/core';
import type { AdminPort, ConsumerPort, InboundMessage } from '@assurance/kafka';
import {
  createAdmin,
  createConsumer,
  createKafka,
  EngineWatch,
  type KafkaSasl,
  type KafkaTls,
} from '@assurance/kafka';
import { evaluate, type Policy } from '@assurance/policy';
import { bindingRefOf, DecisionVerifier, engineStageGroups, topicNames } from '@assurance/schemas';
import { checkAction, checkArguments, checkCompletion, failClosedAnswer, verifyAgainst } from './answers.ts';
import { DecisionView } from './decision-view.ts';
import { AssuranceClientError } from './errors.ts';
import { boundedInt, brokerList, DEFAULTS, type TopicClientOptions, type ViewEvent } from './options.ts';
import type {
  AssuranceClient,
  ClientHealth,
  CompletedStepUp,
  DegradedReason,
  RequirementAnswer,
  VerifyAnswer,
} from './types.ts';

const HOUR_MS = 3_600_000;

/**
 * The engines' public keys as a verifier: decisions are verified by default, and a client that
 * verifies nothing must say so (`verifySignatures: false`).
 */
function verifierFor(options: TopicClientOptions): { verifier?: DecisionVerifier } {
  if (options.verifySignatures === false) return {};
  const keys = options.decisionKeys ?? [];
  if (keys.length === 0) {
    throw new AssuranceClientError(
      'invalid_options',
      "topic mode verifies decision signatures: give decisionKeys (the engines' public keys), or verifySignatures: false",
    );
  }
  try {
    return { verifier: new DecisionVerifier(keys) };
  } catch (err) {
    throw new AssuranceClientError('invalid_options', `decisionKeys: ${(err as Error).message}`);
  }
}

/** The decisions topic under `namespace` (`<ns>.assurance.decisions.v1`), unless `topic` names it. */
export function decisionsTopicName(namespace?: string, topic?: string): string {
  return topic ?? topicNames(namespace ?? '').decisions;
}

/**
 * Topic mode: a consumer in a group of its own reads the compacted decisions topic from the
 * beginning and keeps reading; the latest decision per identity lives in a {@link DecisionView}.
 *
 * Freshness comes from the group's committed lag, checked with the admin client on a timer and
 * whenever a batch ends at the high watermark: a partition with lag 0 at the start of a check was
 * fully read as of then. Offsets are committed only after a batch is in the view, so lag 0 is
 * proof. When brokers become unreachable or the consumer stops, checks fail or show lag, and the
 * view ages past `maxStalenessMs`: answers fail closed.
 */
export class TopicAssuranceClient implements AssuranceClient {
  readonly mode = 'topic' as const;
  readonly topic: string;
  readonly groupId: string;
  readonly #policy: Policy;
  readonly #now: () => Date;
  readonly #maxStalenessMs: number;
  readonly #lagCheckIntervalMs: number;
  readonly #logger: Logger;
  readonly #onEvent: ((event: ViewEvent) => void) | undefined;
  readonly #engineNamespace: string;
  readonly #watchEngine: boolean;
  readonly #engineGroupId: string;
  readonly #maxStallMs: number;
  readonly #channelHashSecret: string | undefined;
  #verifying: NodeJS.Timeout | undefined;
  readonly #sasl: KafkaSasl | undefined;
  readonly #tls: KafkaTls | true | undefined;
  readonly #validUntilGraceMs: number;
  #engine: EngineWatch | undefined;
  readonly #view: DecisionView;
  readonly #ready = Promise.withResolvers<void>();
  readonly #started: Promise<void>;
  #admin: AdminPort | undefined;
  #consumer: ConsumerPort | undefined;
  #timer: NodeJS.Timeout | undefined;
  #isReady = false;
  #failed = false;
  #closed = false;
  #checking: Promise<void> | undefined;
  #checkAgain = false;

  constructor(options: TopicClientOptions, policy: Policy) {
    const brokers = brokerList(options.brokers);
    this.topic = decisionsTopicName(options.namespace, options.topic);
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(this.topic)) {
      throw new AssuranceClientError('invalid_options', `"${this.topic}" is not a valid topic name`);
    }
    this.#policy = policy;
    if (options.channelHashSecret !== undefined && options.channelHashSecret.length < 16) {
      throw new AssuranceClientError(
        'invalid_options',
        "channelHashSecret must be the engine's secret (16+ characters)",
      );
    }
    this.#channelHashSecret = options.channelHashSecret;
    this.#sasl = options.sasl;
    this.#tls = options.tls;
    this.#view = new DecisionView(policy, {
      ...verifierFor(options),
      now: () => this.#now().getTime(),
      ...(options.maxIdentities === undefined
        ? {}
        : { maxIdentities: boundedInt('maxIdentities', options.maxIdentities, 0, 1_000_000_000) }),
    });
    this.#now = options.now ?? (() => new Date());
    this.#maxStalenessMs = boundedInt(
      'maxStalenessMs',
      options.maxStalenessMs,
      DEFAULTS.maxStalenessMs,
      HOUR_MS,
    );
    this.#lagCheckIntervalMs = boundedInt(
      'lagCheckIntervalMs',
      options.lagCheckIntervalMs,
      DEFAULTS.lagCheckIntervalMs,
      HOUR_MS,
    );
    this.#logger = (options.logger ?? createLogger('assurance-client', 'warn')).child({
      component: 'assurance-client',
      topic: this.topic,
    });
    this.#onEvent = options.onViewEvent;
    this.#engineNamespace = options.engineNamespace ?? options.namespace ?? '';
    this.#watchEngine = options.watchEngine ?? true;
    this.#engineGroupId = options.engineGroupId ?? DEFAULTS.engineGroupId;
    this.#maxStallMs = boundedInt('maxStallMs', options.maxStallMs, DEFAULTS.maxStallMs, HOUR_MS);
    this.#validUntilGraceMs = boundedInt(
      'validUntilGraceMs',
      options.validUntilGraceMs,
      DEFAULTS.validUntilGraceMs,
      24 * HOUR_MS,
    );
    this.groupId = `${options.groupIdPrefix ?? DEFAULTS.groupIdPrefix}-${randomUUID()}`;
    // Nobody may be awaiting ready(); a failed start must not become an unhandled rejection.
    this.#ready.promise.catch(() => {});
    this.#started = this.#start(brokers, options.clientId ?? DEFAULTS.clientId).catch((error: unknown) => {
      this.#failed = true;
      const wrapped = new AssuranceClientError(
        'bootstrap_failed',
        `cannot read ${this.topic}: ${(error as Error)?.message ?? String(error)}`,
        { cause: error },
      );
      this.#ready.reject(wrapped);
      this.#logger.error({ err: (error as Error)?.message }, 'topic view failed to start');
      // Nothing will use these connections again; release them even if close() is never called.
      return this.#release();
    });
  }

  async #start(brokers: string[], clientId: string): Promise<void> {
    const kafka = createKafka({
      brokers,
      clientId,
      logger: this.#logger,
      ...(this.#sasl ? { sasl: this.#sasl } : {}),
      ...(this.#tls ? { tls: this.#tls } : {}),
    });
    this.#consumer = createConsumer(
      kafka,
      { groupId: this.groupId, topics: [this.topic], fromBeginning: true },
      this.#logger,
      {
        onBatchDone: ({ lag }) => {
          // The batch reached the high watermark: its offsets are committed, so a check now proves it.
          if (lag === 0) this.#scheduleCheck();
        },
        onCrash: (error, restarting) => {
          if (!restarting) this.#failed = true;
          this.#emit({ kind: 'consumer_crashed', error, restarting });
        },
      },
    );
    // Subscribing fails fast when the topic does not exist (topics are never auto-created).
    await this.#consumer.start(async (messages) => {
      this.#applyAll(messages);
      return { processed: messages.length };
    });
    if (this.#closed) return;
    const admin = await createAdmin(kafka);
    // Lag checks (and so readiness) wait for the admin client, which is set only once the engine
    // watch has its first sample: a view must not be "ready" while the engine's state is unknown.
    if (this.#watchEngine && !this.#closed) {
      // The view can be perfectly fresh while the engine has stopped deciding: a SIM swap waiting
      // behind a stalled engine must degrade answers here as it does in the API (same rule, same code).
      const topics = topicNames(this.#engineNamespace);
      this.#engine = new EngineWatch({
        admin,
        groups: engineStageGroups(this.#engineGroupId, topics),
        intervalMs: Math.min(this.#lagCheckIntervalMs, 500),
        maxStallMs: this.#maxStallMs,
        // Unknown once a few samples in a row failed (never shorter than the view's own bound).
        maxAgeMs: Math.max(this.#maxStalenessMs, 2000),
        logger: this.#logger,
        clock: () => this.#now().getTime(),
      });
      await this.#engine.start();
    }
    this.#admin = admin;
    if (this.#closed) {
      await this.#engine?.stop();
      await admin.close().catch(() => {});
      return;
    }
    this.#startChecks();
  }

  #startChecks(): void {
    if (this.#closed) return;
    // A failed check is not fatal: the next one (timer or batch) may succeed; until then the view is not ready.
    this.#scheduleCheck();
    this.#timer = setInterval(() => this.#scheduleCheck(), this.#lagCheckIntervalMs);
    this.#timer.unref();
  }

  /**
   * Verifies the view's held decisions in slices of a few milliseconds between batches, so a read
   * from the topic's start is ready without paying every signature first (lookups verify their own).
   */
  #verifyInBackground(): void {
    if (this.#verifying !== undefined || this.#closed || this.#view.unverified === 0) return;
    this.#verifying = setTimeout(() => {
      this.#verifying = undefined;
      if (this.#view.verifyPending(5) > 0) this.#verifyInBackground();
    }, 0);
    this.#verifying.unref();
  }

  #applyAll(messages: readonly InboundMessage[]): void {
    for (const m of messages) {
      const update = this.#view.apply(m);
      if (update.kind === 'rejected') {
        this.#logger.warn(
          { partition: m.partition, offset: m.offset, reason: update.reason },
          'unreadable decision; that identity answers degraded until a newer one arrives',
        );
      }
      this.#emit(update);
    }
    this.#verifyInBackground();
  }

  #emit(event: ViewEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(event);
    } catch (error) {
      this.#logger.warn({ err: (error as Error)?.message }, 'onViewEvent threw');
    }
  }

  /** Runs a lag check now, or right after the one in flight (checks never overlap). */
  #scheduleCheck(): void {
    if (this.#closed) return;
    if (this.#checking !== undefined) {
      this.#checkAgain = true;
      return;
    }
    this.#checking = this.#checkLag()
      .catch((error: unknown) => {
        const err = error instanceof Error ? error : new Error(String(error));
        this.#logger.warn({ err: err.message }, 'lag check failed; the view ages');
        this.#emit({ kind: 'lag_check_failed', error: err });
      })
      .finally(() => {
        this.#checking = undefined;
        if (this.#checkAgain) {
          this.#checkAgain = false;
          this.#scheduleCheck();
        }
      });
  }

  async #checkLag(): Promise<void> {
    const admin = this.#admin;
    if (admin === undefined) return;
    const startedAt = this.#now().getTime();
    const lags = await admin.lag(this.groupId, this.topic);
    if (lags.length === 0) throw new Error(`topic ${this.topic} has no partitions`);
    this.#view.setPartitions(lags.map((l) => l.partition));
    for (const l of lags) if (l.lag === 0) this.#view.markCaughtUp(l.partition, startedAt);
    const asOf = this.#view.completeAsOf();
    if (asOf === undefined) return;
    this.#emit({ kind: 'caught_up', asOfMs: asOf });
    if (!this.#isReady) {
      this.#isReady = true;
      this.#ready.resolve();
      this.#emit({ kind: 'ready' });
    }
  }

  /** Why answers would be degraded now regardless of the identity (empty when the view is usable). */
  #viewReasons(nowMs: number): DegradedReason[] {
    if (this.#failed && !this.#isReady) return ['not_ready'];
    if (this.#failed) return ['view_failed'];
    if (!this.#isReady) return ['not_ready'];
    const asOf = this.#view.completeAsOf();
    if (asOf === undefined || nowMs - asOf > this.#maxStalenessMs) return ['stale_view'];
    if (!this.#watchEngine) return [];
    const engine = this.#engine?.health(nowMs);
    if (engine === undefined || engine.state === 'unknown') return ['engine_unknown'];
    if (engine.state === 'stalled') return ['engine_stalled'];
    return [];
  }

  #assertOpen(): void {
    if (this.#closed) throw new AssuranceClientError('client_closed', 'the assurance client is closed');
  }

  #answer(identityId: string, action: string, now: Date): RequirementAnswer {
    const reasons = this.#viewReasons(now.getTime());
    if (reasons.length > 0) return failClosedAnswer(this.#policy, 'topic', identityId, action, reasons, now);
    const entry = this.#view.get(identityId);
    if (entry.invalid) {
      return failClosedAnswer(this.#policy, 'topic', identityId, action, ['invalid_decision'], now);
    }
    const tier = checkAction(this.#policy, action);
    const { decision } = entry;
    if (decision === undefined && this.#view.full) {
      // It may be an identity whose decision found no room: never the baseline then.
      return failClosedAnswer(this.#policy, 'topic', identityId, action, ['view_full'], now);
    }
    if (decision !== undefined) {
      if (now.getTime() > Date.parse(decision.validUntil) + this.#validUntilGraceMs) {
        return failClosedAnswer(this.#policy, 'topic', identityId, action, ['decision_expired'], now);
      }
      return {
        identityId,
        action,
        tier,
        requirement: decision.tiers[tier],
        degraded: false,
        degradedReasons: [],
        sequence: decision.sequence,
        source: 'topic',
        riskLevel: decision.riskLevel,
        validUntil: decision.validUntil,
        policyDigest: decision.policyDigest,
      };
    }
    // No decision: the engine has never decided this identity, so the policy's baseline applies.
    const baseline = evaluate(
      this.#policy,
      { identityId, tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
      now,
    );
    return {
      identityId,
      action,
      tier,
      requirement: baseline.tiers[tier],
      degraded: false,
      degradedReasons: [],
      sequence: 0,
      source: 'topic',
      riskLevel: baseline.riskLevel,
      validUntil: baseline.validUntil,
      policyDigest: this.#policy.digest,
    };
  }

  async requirementFor(identityId: string, action: string): Promise<RequirementAnswer> {
    this.#assertOpen();
    checkArguments(identityId, action);
    checkAction(this.#policy, action);
    return this.#answer(identityId, action, this.#now());
  }

  async verify(identityId: string, action: string, completed: CompletedStepUp): Promise<VerifyAnswer> {
    this.#assertOpen();
    checkArguments(identityId, action);
    checkAction(this.#policy, action);
    const done = checkCompletion(completed);
    const secret = this.#channelHashSecret;
    if (done.channel && secret === undefined) {
      throw new AssuranceClientError(
        'invalid_request',
        "completed.channel needs channelHashSecret (the engine's CHANNEL_HASH_SECRET) in topic mode",
      );
    }
    const now = this.#now();
    const channel = done.channel && secret ? bindingRefOf(secret, done.channel) : undefined;
    return verifyAgainst(this.#answer(identityId, action, now), done, now, channel);
  }

  async ready(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#assertOpen();
    if (options.timeoutMs === undefined) return this.#ready.promise;
    const timeoutMs = boundedInt('timeoutMs', options.timeoutMs, 1, HOUR_MS);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AssuranceClientError('bootstrap_failed', `${this.topic} not read within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#ready.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  health(): ClientHealth {
    const nowMs = this.#now().getTime();
    const asOf = this.#view.completeAsOf();
    return {
      mode: 'topic',
      ready: this.#isReady,
      stalenessMs: asOf === undefined ? null : Math.max(0, nowMs - asOf),
      degraded: this.#closed || this.#viewReasons(nowMs).length > 0,
      identities: this.#view.size,
      rejected: this.#view.rejected,
      unverified: this.#view.unverified,
      closed: this.#closed,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#verifying);
    this.#ready.reject(new AssuranceClientError('client_closed', 'the assurance client is closed'));
    await this.#started;
    await this.#checking;
    await this.#engine?.stop();
    await this.#release();
  }

  /** Stops the consumer and closes the admin client, once. */
  async #release(): Promise<void> {
    const consumer = this.#consumer;
    const admin = this.#admin;
    this.#consumer = undefined;
    this.#admin = undefined;
    await consumer?.stop().catch((error: unknown) => {
      this.#logger.warn({ err: (error as Error)?.message }, 'consumer stop failed');
    });
    await admin?.close().catch(() => {});
  }
}
