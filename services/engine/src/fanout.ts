import { randomUUID } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { asAssuranceError } from '@assurance/core';
import type { ProducerPort } from '@assurance/kafka';
import type { ChannelMemberAt, Mutation, SignalRecord, StateStore } from '@assurance/redis';
import { type TopicNames, Trigger } from '@assurance/schemas';
import { recordMutations } from './derive.ts';
import type { EngineMetrics } from './metrics.ts';
import type { RoutedMessage } from './routed.ts';
import type { BatchGuard } from './store-guard.ts';

/** A new fan-out's generation: unique per channel event, so a finished fan-out's queue entry never names a later one. */
export function fanoutGeneration(): string {
  return randomUUID();
}

/**
 * What a page of a channel's members is handed: per identity, the channel's records, each with the
 * op time and route of the membership by which the identity admits it (identity-apply); one holding
 * the channel directly and through a sync account gets both. A carrier's or mail provider's tenant
 * is not its members' tenant.
 */
export function channelApplies(
  members: readonly ChannelMemberAt[],
  records: readonly SignalRecord[],
  trigger: Trigger,
  receivedAtMs: number,
): RoutedMessage[] {
  const handed = recordMutations(records);
  // Nothing left to hand on (a replay of something long expired): nobody is concerned.
  if (handed.length === 0) return [];
  const byIdentity = new Map<string, Mutation[]>();
  for (const m of members) {
    const list = byIdentity.get(m.identityId) ?? [];
    for (const x of handed)
      list.push({ ...x, mop: m.opMs, ...(m.via === null ? {} : { via: m.via }) } as Mutation);
    byIdentity.set(m.identityId, list);
  }
  return [...byIdentity].map(([identityId, mutations]) => ({
    v: 2,
    kind: 'apply',
    identityId,
    tenant: null,
    trigger,
    receivedAtMs,
    mutations,
  }));
}

export interface FanoutWorkerDeps {
  readonly store: StateStore;
  readonly producer: ProducerPort;
  readonly guard: BatchGuard;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  readonly pageSize: number;
  /** How often the queue is polled when nothing woke the worker. */
  readonly intervalMs: number;
  /** How long a claimed page is held before another worker may redo it. */
  readonly leaseMs: number;
  readonly clock?: () => number;
}

/**
 * Walks large channels' fan-outs page by page (docs/state.md, channel membership). The router
 * hands a channel event's first page on itself and queues the rest; any engine running the router
 * takes pages from the queue: a claim leases the fan-out, the page's messages are sent, and only
 * then is the cursor moved on. A worker that dies mid-page leaves the lease to run out and the page
 * to be redone (once more, never the whole fan-out); a newer event about the channel restarts the
 * fan-out from its first page under a new generation, handing on its records and those of the one
 * it interrupted.
 */
export class FanoutWorker {
  readonly #d: FanoutWorkerDeps;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(deps: FanoutWorkerDeps) {
    this.#d = deps;
    this.#now = deps.clock ?? Date.now;
  }

  start(): void {
    this.#schedule(this.#d.intervalMs);
  }

  /** A fan-out was queued here: take it now rather than at the next poll. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), ms);
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#running) return;
    this.#again = false;
    this.#running = this.drain()
      .then(() => undefined)
      .catch((err: unknown) => {
        this.#d.metrics.failures.inc({
          stage: 'fanout',
          error: asAssuranceError(err, 'redis_unavailable').code,
        });
        this.#d.logger.warn({ err }, 'fan-out pass failed; will retry');
      })
      .finally(() => {
        this.#running = undefined;
        if (!this.#stopped) this.#schedule(this.#again ? 0 : this.#d.intervalMs);
      });
  }

  /** Takes pages until none is due; returns how many were done. */
  async drain(): Promise<number> {
    let pages = 0;
    for (;;) {
      if (this.#d.guard.hold()) break;
      const claimed = await this.#d.store.claimFanouts(this.#now(), this.#d.leaseMs, 16);
      if (claimed.length === 0) break;
      // Settled, not raced: a page that fails must not leave the others running into the next pass.
      const done = await Promise.allSettled(claimed.map((c) => this.#page(c.channelRef, c.generation)));
      pages += done.filter((d) => d.status === 'fulfilled' && d.value).length;
      const failed = done.find((d) => d.status === 'rejected');
      if (failed) throw failed.reason;
      if (this.#stopped) break;
    }
    this.#d.metrics.fanoutBacklog.set(await this.#d.store.fanoutBacklog());
    return pages;
  }

  /** One page of one fan-out; whether a page was sent. */
  async #page(channelRef: string, generation: string): Promise<boolean> {
    const { store, metrics } = this.#d;
    const pass = this.#d.guard.begin();
    const nowMs = this.#now();
    const page = await store.fanoutStep(channelRef, nowMs, this.#d.pageSize);
    if (page === null || page.generation !== generation) {
      // Finished, or restarted by a newer event (whose own entry is queued): this entry is spent.
      await store.settleFanout(channelRef, generation, false, nowMs);
      return false;
    }
    const trigger = Trigger.parse(JSON.parse(page.trigger));
    const messages = channelApplies(page.members, page.records, trigger, nowMs);
    // Nothing leaves if the store lost data while the page was read: the lease runs out and the
    // page is read again from what the store holds then.
    const lost = await this.#d.guard.verify(pass);
    if (lost) {
      metrics.failures.inc({ stage: 'fanout', error: lost.code });
      return false;
    }
    await this.#d.producer.send(
      messages.map((m) => ({
        topic: this.#d.topics.identityEvents,
        key: m.identityId,
        value: JSON.stringify(m),
        headers: { 'content-type': 'application/json' },
      })),
    );
    if (messages.length > 0) metrics.fanout.observe(messages.length);
    const moved = await store.fanoutAdvance(channelRef, page);
    metrics.fanoutPages.inc({ result: moved });
    // 'moved': another worker redid this page after our lease ran out and owns the entry now.
    if (moved !== 'moved') await store.settleFanout(channelRef, generation, moved === 'more', this.#now());
    return true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}
