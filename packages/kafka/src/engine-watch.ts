import type { Logger } from '@assurance/core';
import type { AdminPort, PartitionPosition } from './types.ts';

/** One consumer group of the engine and the topics it consumes. */
export interface WatchedGroup {
  readonly stage: string;
  readonly groupId: string;
  readonly topics: readonly string[];
}

export interface EngineWatchOptions {
  readonly admin: AdminPort;
  readonly groups: readonly WatchedGroup[];
  /** How often offsets are sampled. */
  readonly intervalMs: number;
  /** A message may wait this long without the group making progress on its partition. */
  readonly maxStallMs: number;
  /** A sample older than this is no evidence at all: the engine's state is unknown. */
  readonly maxAgeMs: number;
  /** Messages the engine may be behind in all (a backlog it is working through), or Infinity. */
  readonly maxLag?: number;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** Called after every successful sample (metrics). */
  readonly onSample?: (health: EngineHealth) => void;
}

/** A partition with a message waiting longer than the stall bound while its group did not move. */
export interface StalledPartition {
  readonly stage: string;
  readonly topic: string;
  readonly partition: number;
  readonly waiting: number;
  readonly waitingMs: number;
}

export type EngineHealth =
  | {
      readonly state: 'ok' | 'lagging' | 'stalled';
      /** Messages behind, over every watched partition. */
      readonly lag: number;
      readonly lagByStage: Readonly<Record<string, number>>;
      readonly stalled: readonly StalledPartition[];
      /** Members per stage at the last sample (0: nobody consumes that stage's input). */
      readonly members: Readonly<Record<string, number>>;
      readonly ageMs: number;
    }
  | { readonly state: 'unknown'; readonly ageMs: number | null; readonly error: string | null };

/** What we know of one partition, from our own observations only. */
interface Track {
  committed: bigint;
  end: bigint;
  /** When we saw the committed offset move last (or first saw the partition). */
  progressAt: number;
  /** End offsets in the order we first saw them grow: `[end, when]`, pruned below `committed`. */
  arrivals: Array<[bigint, number]>;
  /** When a sample last included the partition. */
  seenAt: number;
}

/** Arrival marks kept per partition; beyond it the middle ones are merged away. */
const ARRIVALS_MAX = 512;

/**
 * Tells whether the engine keeps up, from Kafka alone, so that no count of messages can fool it:
 * every `intervalMs` it reads each watched partition's end offset and the engine group's committed
 * offset. A message is "waiting" from the moment we first saw the end offset pass it; a partition
 * is stalled when a message has waited longer than `maxStallMs` and its group has not committed
 * anything new for that long either. One message and ten thousand are judged alike, and an engine
 * that is stopped, frozen, crash-looping on one message or missing a stage all stop committing.
 *
 * Only our own clock and observations are used (never message timestamps, which producers set), and
 * a fresh watcher treats what is already waiting as arrived at its start: never earlier than it can
 * know, so it may report a stall late, never early... and never "fresh" for longer than
 * `maxStallMs` plus one interval after it started.
 */
export class EngineWatch {
  readonly #o: EngineWatchOptions;
  readonly #now: () => number;
  readonly #tracks = new Map<string, Track>();
  #members: Record<string, number> = {};
  #sampledAt: number | undefined;
  #lastError: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #inFlight: Promise<boolean> | undefined;

  constructor(options: EngineWatchOptions) {
    this.#o = options;
    this.#now = options.clock ?? Date.now;
  }

  /** Samples until the first sample succeeds (or `maxAgeMs` passes), then keeps sampling. */
  async start(): Promise<void> {
    const deadline = this.#now() + this.#o.maxAgeMs;
    // Topics created a moment ago answer "not the leader" for a while: that is not a verdict.
    while (!(await this.refresh()) && this.#now() < deadline && !this.#stopped) {
      await new Promise((r) => setTimeout(r, Math.min(200, this.#o.intervalMs)));
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.refresh().finally(() => this.#schedule());
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Samples now (joining a sample already running); true when it succeeded. */
  refresh(): Promise<boolean> {
    this.#inFlight ??= this.#sample().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #sample(): Promise<boolean> {
    let results: Array<{ group: WatchedGroup; positions: PartitionPosition[]; members: number }>;
    let timer: NodeJS.Timeout | undefined;
    try {
      const sampled = Promise.all(
        this.#o.groups.map(async (group) => ({
          group,
          positions: await this.#o.admin.positions(group.groupId, group.topics),
          members: await this.#o.admin.members(group.groupId),
        })),
      );
      // A request the client keeps retrying must not leave us believing an old sample forever.
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('offset sample timed out')), this.#o.maxAgeMs);
      });
      sampled.catch(() => {});
      results = await Promise.race([sampled, expired]);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (this.#lastError !== message) this.#o.logger.warn({ err: message }, 'engine offset sample failed');
      this.#lastError = message;
      return false;
    } finally {
      clearTimeout(timer);
    }
    const now = this.#now();
    const seen = new Set<string>();
    const members: Record<string, number> = {};
    for (const { group, positions, members: count } of results) {
      members[group.stage] = count;
      for (const p of positions) {
        const key = `${group.stage}|${p.topic}|${p.partition}`;
        seen.add(key);
        this.#observe(key, p, now);
      }
    }
    // A partition a sample leaves out (a group mid-rebalance, a leader election) keeps its track and
    // counts with what was last seen: starting its clock over when it reappears would hide a stall
    // for up to MAX_STALL. Only one unseen for longer than maxAge (a deleted topic) is forgotten.
    for (const [key, t] of this.#tracks)
      if (seen.has(key)) t.seenAt = now;
      else if (now - t.seenAt > this.#o.maxAgeMs) this.#tracks.delete(key);
    this.#members = members;
    this.#sampledAt = now;
    this.#lastError = null;
    this.#o.onSample?.(this.health(now));
    return true;
  }

  #observe(key: string, p: PartitionPosition, now: number): void {
    let t = this.#tracks.get(key);
    if (!t) {
      t = { committed: p.committed, end: p.committed, progressAt: now, arrivals: [], seenAt: now };
      this.#tracks.set(key, t);
    }
    if (p.committed !== t.committed) {
      t.committed = p.committed;
      t.progressAt = now;
    }
    if (p.end > t.end) {
      t.arrivals.push([p.end, now]);
      if (t.arrivals.length > ARRIVALS_MAX) t.arrivals.splice(1, 1);
    }
    t.end = p.end;
    while (t.arrivals.length > 0 && (t.arrivals[0] as [bigint, number])[0] <= t.committed) t.arrivals.shift();
  }

  /** Why the last sample failed, or null after a good one. */
  get lastError(): string | null {
    return this.#lastError;
  }

  health(now: number = this.#now()): EngineHealth {
    const ageMs = this.#sampledAt === undefined ? null : Math.max(0, now - this.#sampledAt);
    if (ageMs === null || ageMs > this.#o.maxAgeMs)
      return { state: 'unknown', ageMs, error: this.#lastError };
    let lag = 0;
    const lagByStage: Record<string, number> = {};
    const stalled: StalledPartition[] = [];
    for (const [key, t] of this.#tracks) {
      const [stage = '', topic = '', partition = '0'] = key.split('|');
      const waiting = t.end > t.committed ? Number(t.end - t.committed) : 0;
      lag += waiting;
      lagByStage[stage] = (lagByStage[stage] ?? 0) + waiting;
      const head = t.arrivals[0];
      if (waiting === 0 || head === undefined) continue;
      const since = Math.max(head[1], t.progressAt);
      if (now - since <= this.#o.maxStallMs) continue;
      stalled.push({ stage, topic, partition: Number(partition), waiting, waitingMs: now - since });
    }
    const state = stalled.length > 0 ? 'stalled' : lag > (this.#o.maxLag ?? Infinity) ? 'lagging' : 'ok';
    return { state, lag, lagByStage, stalled, members: { ...this.#members }, ageMs };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
  }
}
