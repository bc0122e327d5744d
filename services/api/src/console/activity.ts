import { EventEmitter } from 'node:events';
import type { Logger } from '@assurance/core';
import { type InboundMessage, type KafkaClient, type TopicTail, tailTopic } from '@assurance/kafka';
import {
  DLQ_HEADERS,
  type Outcome,
  RISK_LEVELS,
  type RiskLevel,
  TIERS,
  type Tier,
  type Trigger,
} from '@assurance/schemas';
import { z } from 'zod';

/**
 * What the console shows of the pipeline's recent activity, read from Kafka by the API itself:
 * each identity's decisions from the audit topic (its timeline, pushed live to open pages), and
 * per minute the decisions by risk and tier outcome, and the dead letters by error class.
 *
 * It is a view of recent records, not a store: at start it reads back the last `lookback` records
 * of each partition, keeps the last `perIdentity` entries of the `identities` identities seen
 * most recently, and forgets the rest. The audit topic stays the record (docs/console.md).
 */

/** One published decision, as the timeline shows it. */
export interface TimelineEntry {
  readonly sequence: number;
  readonly recordedAt: string;
  readonly tenantId: string | null;
  readonly riskLevel: RiskLevel;
  readonly outcomes: Readonly<Record<Tier, Outcome>>;
  readonly signals: readonly string[];
  readonly reasons: ReadonlyArray<{ readonly code: string; readonly admin: string }>;
  readonly trigger: Trigger;
  readonly policyVersion: string;
}

/** What the timeline reads of an audit record (either decision format: tiers carry their outcome). */
const AuditView = z.object({
  identityId: z.string().min(1).max(200),
  tenantId: z.string().max(200).nullable(),
  sequence: z.number().int().positive(),
  reasons: z.array(z.object({ code: z.string(), admin: z.string() })),
  trigger: z.object({
    eventId: z.string(),
    topic: z.string(),
    occurredAt: z.string(),
    actor: z.string().optional(),
  }),
  policyVersion: z.string(),
  recordedAt: z.iso.datetime(),
});
const DecisionView = z.object({
  riskLevel: z.enum(RISK_LEVELS),
  tiers: z.object(
    Object.fromEntries(TIERS.map((t) => [t, z.object({ outcome: z.string() })])) as Record<
      Tier,
      z.ZodObject<{ outcome: z.ZodString }>
    >,
  ),
  signals: z.array(z.object({ code: z.string() })),
});

/** Per minute: decisions by risk, by tier and outcome; dead letters by error class. */
export interface MinuteBucket {
  readonly minute: number;
  readonly decisions: number;
  readonly risk: Record<string, number>;
  readonly outcomes: Record<string, Record<string, number>>;
  readonly deadLetters: Record<string, number>;
}

export interface ActivityOptions {
  readonly lookback: number;
  readonly identities: number;
  readonly perIdentity?: number;
  /** Minutes of per-minute counts kept. */
  readonly minutes?: number;
  readonly clock?: () => number;
}

export class ActivityView {
  readonly #o: Required<ActivityOptions>;
  /** Identity → its entries, oldest first; Map order is least recently written first. */
  readonly #timelines = new Map<string, TimelineEntry[]>();
  readonly #buckets = new Map<number, MinuteBucket>();
  readonly #events = new EventEmitter();
  #unreadable = 0;
  /** The earliest record time read back, per source: what the views can tell nothing before. */
  #oldest: number | undefined;

  constructor(options: ActivityOptions) {
    this.#o = { perIdentity: 50, minutes: 60, clock: Date.now, ...options };
    // One listener per open console page: the default warning at 10 is not a leak here.
    this.#events.setMaxListeners(0);
  }

  /** Takes audit records (JSON, as the engine writes them); counts those it cannot read. */
  addAudit(messages: readonly InboundMessage[]): void {
    for (const m of messages) {
      const entry = m.value ? this.#parse(m.value) : undefined;
      if (!entry) {
        this.#unreadable++;
        continue;
      }
      this.#add(entry.identityId, entry.entry);
    }
  }

  /** Takes dead letters: only their error class header and time are read. */
  addDeadLetters(messages: readonly InboundMessage[]): void {
    for (const m of messages) {
      const bucket = this.#bucket(m.timestampMs);
      if (!bucket) continue;
      const cls = m.headers[DLQ_HEADERS.errorClass] ?? 'unknown';
      bucket.deadLetters[cls] = (bucket.deadLetters[cls] ?? 0) + 1;
    }
  }

  /** The identity's entries, newest first. */
  timeline(identityId: string): readonly TimelineEntry[] {
    return [...(this.#timelines.get(identityId) ?? [])].reverse();
  }

  /** The last `minutes` minutes, oldest first, empty minutes included. */
  minutes(): MinuteBucket[] {
    const now = Math.floor(this.#o.clock() / 60_000);
    const out: MinuteBucket[] = [];
    for (let m = now - this.#o.minutes + 1; m <= now; m++) out.push(this.#buckets.get(m) ?? emptyBucket(m));
    return out;
  }

  get unreadable(): number {
    return this.#unreadable;
  }

  get identities(): number {
    return this.#timelines.size;
  }

  /** The time of the earliest record read, or undefined before any. */
  get oldest(): number | undefined {
    return this.#oldest;
  }

  /** Calls `listener` with each new entry of `identityId`; returns the unsubscribe function. */
  follow(identityId: string, listener: (e: TimelineEntry) => void): () => void {
    const event = `entry:${identityId}`;
    this.#events.on(event, listener);
    return () => this.#events.off(event, listener);
  }

  #parse(value: Buffer): { identityId: string; entry: TimelineEntry } | undefined {
    let raw: unknown;
    try {
      raw = JSON.parse(value.toString('utf8'));
    } catch {
      return undefined;
    }
    const audit = AuditView.safeParse(raw);
    const r = raw as { after?: unknown; afterV2?: unknown };
    const decision = DecisionView.safeParse(r.afterV2 ?? r.after);
    if (!audit.success || !decision.success) return undefined;
    const a = audit.data;
    const d = decision.data;
    return {
      identityId: a.identityId,
      entry: {
        sequence: a.sequence,
        recordedAt: a.recordedAt,
        tenantId: a.tenantId,
        riskLevel: d.riskLevel,
        outcomes: Object.fromEntries(TIERS.map((t) => [t, d.tiers[t].outcome])) as Record<Tier, Outcome>,
        signals: [...new Set(d.signals.map((s) => s.code))].sort(),
        reasons: a.reasons.map((x) => ({ code: x.code, admin: x.admin })),
        trigger: a.trigger,
        policyVersion: a.policyVersion,
      },
    };
  }

  #add(identityId: string, entry: TimelineEntry): void {
    const list = this.#timelines.get(identityId) ?? [];
    // A decision seen again (published again after a crash) is the same decision: kept once.
    if (list.some((e) => e.sequence === entry.sequence)) return;
    const at = Date.parse(entry.recordedAt);
    if (this.#oldest === undefined || at < this.#oldest) this.#oldest = at;
    const bucket = this.#bucket(at);
    if (bucket) {
      (bucket as { decisions: number }).decisions++;
      bucket.risk[entry.riskLevel] = (bucket.risk[entry.riskLevel] ?? 0) + 1;
      for (const t of TIERS) {
        const byOutcome = bucket.outcomes[t] ?? {};
        bucket.outcomes[t] = byOutcome;
        byOutcome[entry.outcomes[t]] = (byOutcome[entry.outcomes[t]] ?? 0) + 1;
      }
    }
    list.push(entry);
    // Partitions keep an identity's records in order; a replayed older one still sorts into place.
    list.sort((x, y) => x.sequence - y.sequence);
    if (list.length > this.#o.perIdentity) list.splice(0, list.length - this.#o.perIdentity);
    this.#timelines.delete(identityId);
    this.#timelines.set(identityId, list);
    if (this.#timelines.size > this.#o.identities) {
      const leastRecent = this.#timelines.keys().next().value as string;
      this.#timelines.delete(leastRecent);
    }
    this.#events.emit(`entry:${identityId}`, entry);
  }

  #bucket(atMs: number): MinuteBucket | undefined {
    const minute = Math.floor(atMs / 60_000);
    const now = Math.floor(this.#o.clock() / 60_000);
    if (!Number.isFinite(minute) || minute <= now - this.#o.minutes || minute > now + 1) return undefined;
    let b = this.#buckets.get(minute);
    if (!b) {
      b = emptyBucket(minute);
      this.#buckets.set(minute, b);
      for (const k of this.#buckets.keys()) if (k <= now - this.#o.minutes) this.#buckets.delete(k);
    }
    return b;
  }
}

function emptyBucket(minute: number): MinuteBucket {
  return { minute, decisions: 0, risk: {}, outcomes: {}, deadLetters: {} };
}

/** What the console reads of the feed (ActivitySource is one). */
export interface ConsoleActivity {
  readonly feed:
    | { readonly view: ActivityView; readonly state: 'loading' | 'live' | 'interrupted' }
    | undefined;
  /** Why there is no feed, when its start failed. */
  readonly error: string | undefined;
}

/** The view, fed by tails of the audit and dead-letter topics. */
export class ActivityFeed {
  readonly view: ActivityView;
  readonly #tails: TopicTail[];

  private constructor(view: ActivityView, tails: TopicTail[]) {
    this.view = view;
    this.#tails = tails;
    void Promise.all(tails.map((t) => t.caughtUp)).then(() => {
      this.#loaded = true;
    });
  }

  static async start(d: {
    kafka: KafkaClient;
    topics: { audit: string; dlq: string };
    groupIdPrefix: string;
    options: ActivityOptions;
    logger: Logger;
  }): Promise<ActivityFeed> {
    const view = new ActivityView(d.options);
    const tails: TopicTail[] = [];
    try {
      const common = { lookback: d.options.lookback, groupIdPrefix: d.groupIdPrefix, logger: d.logger };
      tails.push(await tailTopic(d.kafka, d.topics.audit, (m) => view.addAudit(m), common));
      tails.push(await tailTopic(d.kafka, d.topics.dlq, (m) => view.addDeadLetters(m), common));
    } catch (err) {
      await Promise.allSettled(tails.map((t) => t.stop()));
      throw err;
    }
    return new ActivityFeed(view, tails);
  }

  #loaded = false;

  /** 'loading' until the records read back are in, 'live' while following, 'interrupted' otherwise. */
  get state(): 'loading' | 'live' | 'interrupted' {
    if (!this.#loaded) return 'loading';
    return this.#tails.every((t) => t.running) ? 'live' : 'interrupted';
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.#tails.map((t) => t.stop()));
  }
}

/**
 * The feed, started in the background and started again until it runs: the API answers without
 * it (a principal that may not read the audit topic gets a console without timelines, and says
 * why), and never waits for it.
 */
export class ActivitySource implements ConsoleActivity {
  #feed: ActivityFeed | undefined;
  #error: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #starting: Promise<void> | undefined;

  readonly d: Parameters<typeof ActivityFeed.start>[0] & { retryMs?: number };

  constructor(d: Parameters<typeof ActivityFeed.start>[0] & { retryMs?: number }) {
    this.d = d;
  }

  start(): void {
    this.#starting = (async () => {
      try {
        const feed = await ActivityFeed.start(this.d);
        if (this.#stopped) await feed.stop();
        else this.#feed = feed;
        this.#error = undefined;
      } catch (err) {
        this.#error = (err as Error).message;
        this.d.logger.warn({ error: this.#error }, 'console activity feed failed to start; retrying');
        if (!this.#stopped) this.#timer = setTimeout(() => this.start(), this.d.retryMs ?? 30_000);
      }
    })();
  }

  get feed(): ActivityFeed | undefined {
    return this.#feed;
  }

  /** Why there is no feed yet, if its start failed. */
  get error(): string | undefined {
    return this.#error;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#starting;
    await this.#feed?.stop();
  }
}
