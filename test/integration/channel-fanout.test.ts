import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { BatchGuard, RoutedMessage } from '@assurance/engine';
import { channelApplies, createEngineMetrics, FanoutWorker } from '@assurance/engine';
import type { OutboundMessage, ProducerPort } from '@assurance/kafka';
import type { Mutation, RedisConnection, SignalRecord } from '@assurance/redis';
import { DEFAULT_CAPS, keySpace, StateStore, signalKey, socKey, socPrefix } from '@assurance/redis';
import { topicNames } from '@assurance/schemas';
import fc from 'fast-check';
import { storeRedis, uniquePrefix } from '../src/harness.ts';

/**
 * A large channel's fan-out in bounded pages (docs/state.md, channel membership), on the real
 * Redis with the engine's fan-out worker: the router's share (the first page, and queueing the rest)
 * is done here as the router does it, so that sends can fail exactly between the steps a crash
 * separates. The end-to-end path through the router and decider is the state oracle's; the property
 * below checks every member's copy against the channel's own records.
 */

let redis: RedisConnection;
before(async () => {
  redis = await storeRedis();
});
after(() => redis.quit());

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LEASE = 30_000;
const now = Math.floor(Date.now() / HOUR) * HOUR;
const PHONE = 'd'.repeat(32);
const topics = topicNames('fanout');
const logger = createLogger('fanout-test', 'silent');
const steady: BatchGuard = {
  hold: () => undefined,
  begin: () => ({ generation: 0, epoch: 0 }),
  verify: async () => undefined,
  epoch: 0,
};
const trigger = (eventId: string) => ({
  eventId,
  topic: 'telco.sim-swap.v1',
  occurredAt: new Date(now).toISOString(),
});

const swap = (ev: string, at: number): Mutation => ({
  t: 'r',
  k: signalKey('sim_swap', 'phone', PHONE),
  code: 'sim_swap',
  scope: 'phone',
  ref: PHONE,
  since: at,
  exp: at + DAY,
  ev,
  at,
  attrs: { changeType: 'sim_change' },
});
const clearSwap = (at: number): Mutation => ({
  t: 'c',
  k: signalKey('sim_swap', 'phone', PHONE),
  code: 'sim_swap',
  scope: 'phone',
  ref: PHONE,
  at,
});
const soc = (at: number): Mutation => ({
  t: 'r',
  k: socKey('phone', PHONE, 'INC-9', 'sim_swap'),
  pk: `${socPrefix('phone', PHONE, 'INC-9')}*`,
  code: 'channel_compromised',
  scope: 'phone',
  ref: PHONE,
  since: at,
  exp: -1,
  ev: `soc-${at}`,
  at,
  attrs: { kind: 'sim_swap', signalId: 'INC-9' },
});

/** Every send, in order; `fail(n)` makes the n-th send from now throw, before or after it lands. */
class Producer implements ProducerPort {
  readonly sends: RoutedMessage[][] = [];
  #failAt: { n: number; landed: boolean } | undefined;
  fail(n: number, landed: boolean): void {
    this.#failAt = { n, landed };
  }
  disarm(): void {
    this.#failAt = undefined;
  }
  async send(messages: readonly OutboundMessage[]): Promise<void> {
    const batch = messages.map((m) => JSON.parse(String(m.value)) as RoutedMessage);
    const f = this.#failAt;
    if (f && --f.n === 0) {
      this.#failAt = undefined;
      if (f.landed) this.sends.push(batch);
      throw new Error(f.landed ? 'died after the page landed' : 'died before the page landed');
    }
    this.sends.push(batch);
  }
  async close(): Promise<void> {}
  get messages(): RoutedMessage[] {
    return this.sends.flat();
  }
}

interface Channel {
  readonly store: StateStore;
  readonly members: string[];
  readonly page: number;
  /** A channel event as the router handles it: its first page, and the rest queued. */
  event(m: Mutation, eventId?: string): Promise<RoutedMessage[]>;
  worker(producer: Producer, clock: () => number): FanoutWorker;
}

async function channel(size: number, page: number): Promise<Channel> {
  const store = new StateStore(redis, keySpace(uniquePrefix()), {
    keepMs: 7 * DAY,
    stateTtlMs: 30 * DAY,
    caps: DEFAULT_CAPS,
  });
  const members = Array.from({ length: size }, (_, i) => `member-${i}`);
  await Promise.all(
    members.map((id, i) =>
      store.channelBind(PHONE, { identityId: id, via: null }, 'bound', now - DAY + i, now + 30 * DAY, now),
    ),
  );
  return {
    store,
    members,
    page,
    async event(m, eventId = randomUUID()) {
      const t = trigger(eventId);
      const r = await store.channelSignal(PHONE, [m], now, {
        pageSize: page,
        generation: randomUUID(),
        trigger: JSON.stringify(t),
      });
      if (r.pending !== null) await store.scheduleFanout(PHONE, r.pending, now);
      return channelApplies(r.members, r.records, t, now);
    },
    worker: (producer, clock) =>
      new FanoutWorker({
        store,
        producer,
        guard: steady,
        topics,
        metrics: createEngineMetrics(),
        logger,
        pageSize: page,
        intervalMs: 1000,
        leaseMs: LEASE,
        clock,
      }),
  };
}

const ids = (ms: readonly RoutedMessage[]) => ms.map((m) => m.identityId);
const counts = (ms: readonly RoutedMessage[]) => {
  const c = new Map<string, number>();
  for (const id of ids(ms)) c.set(id, (c.get(id) ?? 0) + 1);
  return c;
};

describe('a large channel fans out in bounded pages', () => {
  test('an event reaches a first page itself and queues the rest; the worker reaches every member once, page by page', async () => {
    const ch = await channel(2000, 50);
    const first = await ch.event(swap('s1', now));
    assert.ok(first.length > 0 && first.length <= 4 * ch.page, `first page: ${first.length}`);
    assert.equal(await ch.store.fanoutBacklog(), 1);
    const producer = new Producer();
    const pages = await ch.worker(producer, () => now).drain();
    const all = [...first, ...producer.messages];
    assert.deepEqual(new Set(ids(all)), new Set(ch.members), 'every member reached');
    assert.equal(all.length, ch.members.length, 'each once: nothing was repeated');
    assert.equal(pages, producer.sends.length);
    assert.ok(pages >= 10, `${pages} pages`);
    for (const batch of producer.sends) assert.ok(batch.length <= 4 * ch.page, `a page of ${batch.length}`);
    assert.equal(await ch.store.fanoutBacklog(), 0, 'nothing left queued');
    assert.equal(await redis.exists(ch.store.keys.channel(PHONE).fanout), 0, 'the fan-out is gone');
    const [m] = all;
    assert.equal(m?.kind, 'apply');
    assert.equal(m?.kind === 'apply' && m.mutations[0]?.t, 'm', 'the channel record is handed on');
  });

  test('a small channel is reached whole by the event, and nothing is queued', async () => {
    const ch = await channel(40, 50);
    const first = await ch.event(swap('s1', now));
    assert.deepEqual(new Set(ids(first)), new Set(ch.members));
    assert.equal(await ch.store.fanoutBacklog(), 0);
    assert.equal(await redis.exists(ch.store.keys.channel(PHONE).fanout), 0);
  });

  test('a redelivered event repeats its first page only, during the fan-out and after it', async () => {
    const ch = await channel(1000, 40);
    const first = await ch.event(swap('s1', now), 'ev-1');
    const producer = new Producer();
    producer.fail(4, false);
    await assert.rejects(ch.worker(producer, () => now).drain(), /before the page landed/);
    const again = await ch.event(swap('s1', now), 'ev-1');
    assert.ok(again.length <= 4 * ch.page, `redelivery during the fan-out: ${again.length}`);
    assert.equal(await ch.store.fanoutBacklog(), 1, 'the fan-out is queued once');
    // The failed page's lease runs out; the fan-out goes on from where it was.
    const rest = await ch.worker(producer, () => now + LEASE + 1).drain();
    assert.ok(rest > 0);
    const all = [...first, ...again, ...producer.messages];
    assert.deepEqual(new Set(ids(all)), new Set(ch.members));
    assert.equal(all.length, ch.members.length + again.length, 'only the redelivered page was repeated');
    const late = await ch.event(swap('s1', now), 'ev-1');
    assert.ok(late.length <= 4 * ch.page, `redelivery after the fan-out: ${late.length}`);
    assert.equal(await ch.store.fanoutBacklog(), 0, 'and it queues nothing');
  });

  test('a worker that dies after a page landed and before the cursor moved: another redoes that page, once, after the lease', async () => {
    const ch = await channel(1000, 40);
    const first = await ch.event(swap('s1', now));
    const producer = new Producer();
    producer.fail(3, true);
    await assert.rejects(ch.worker(producer, () => now).drain(), /after the page landed/);
    const landed = producer.messages.length;
    assert.equal(await ch.worker(producer, () => now + 1000).drain(), 0, 'the lease holds the page');
    await ch.worker(producer, () => now + LEASE + 1).drain();
    const all = [...first, ...producer.messages];
    assert.deepEqual(new Set(ids(all)), new Set(ch.members));
    const repeated = all.length - ch.members.length;
    const third = producer.sends[2]?.length ?? 0;
    assert.equal(repeated, third, `the page that landed (${third}) is the only one redone`);
    assert.ok(landed > 0);
    assert.equal(await ch.store.fanoutBacklog(), 0);
  });

  test('a newer event restarts the fan-out and hands both records to the members the first had not reached', async () => {
    const ch = await channel(1000, 40);
    const swapKey = signalKey('sim_swap', 'phone', PHONE);
    const socK = socKey('phone', PHONE, 'INC-9', 'sim_swap');
    const first = await ch.event(swap('s1', now));
    const producer = new Producer();
    producer.fail(3, false);
    await assert.rejects(ch.worker(producer, () => now).drain());
    const reachedByFirst = new Set(ids([...first, ...producer.messages]));
    const second = await ch.event(soc(now + 1));
    assert.equal(await ch.store.fanoutBacklog(), 2, 'the old entry waits to be found spent');
    await ch.worker(producer, () => now + LEASE + 1).drain();
    assert.equal(await ch.store.fanoutBacklog(), 0, 'the spent entry was dropped');
    const keysOf = new Map<string, Set<string>>();
    for (const m of [...first, ...second, ...producer.messages]) {
      if (m.kind !== 'apply') continue;
      const set = keysOf.get(m.identityId) ?? new Set();
      for (const x of m.mutations) if ('k' in x) set.add(x.k);
      keysOf.set(m.identityId, set);
    }
    for (const id of ch.members) {
      const got = keysOf.get(id) ?? new Set();
      assert.ok(got.has(socK), `${id} has the newer record`);
      assert.ok(
        got.has(swapKey),
        `${id} has the older record${reachedByFirst.has(id) ? '' : ' though the first fan-out never reached it'}`,
      );
    }
    assert.ok(reachedByFirst.size < ch.members.length, 'the first fan-out was cut short');
  });
});

describe('property: every member ends with the channel records, and nothing is repeated in full', () => {
  type Step =
    | { t: 'event'; m: 'swap' | 'clear' | 'soc' }
    | { t: 'redeliver' }
    | { t: 'work'; fail: 'none' | 'before' | 'after'; pages: number }
    | { t: 'lease' };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      t: fc.constant('event' as const),
      m: fc.constantFrom('swap' as const, 'clear' as const, 'soc' as const),
    }),
    fc.record({ t: fc.constant('redeliver' as const) }),
    fc.record({
      t: fc.constant('work' as const),
      fail: fc.constantFrom('none' as const, 'before' as const, 'after' as const),
      pages: fc.integer({ min: 1, max: 6 }),
    }),
    fc.record({ t: fc.constant('lease' as const) }),
  );

  test('random events, redeliveries, worker deaths and lease expiries over a channel of 600', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        // Over 512 members: a smaller hash is a listpack, which HSCAN returns whole (the stack's
        // hash-max-listpack-entries), and the pages under test would be one.
        const ch = await channel(600, 16);
        let page = 0;
        const firstPage = (ms: RoutedMessage[]) => {
          page = Math.max(page, ms.length);
          return ms;
        };
        const producer = new Producer();
        const direct: RoutedMessage[] = [];
        let clock = now;
        let at = now;
        let last: { m: Mutation; id: string } | undefined;
        let changes = 0;
        let repeats = 0;
        for (const s of steps) {
          if (s.t === 'event') {
            at += 1000;
            const m = s.m === 'swap' ? swap(`s${at}`, at) : s.m === 'clear' ? clearSwap(at) : soc(at);
            last = { m, id: randomUUID() };
            direct.push(...firstPage(await ch.event(m, last.id)));
            changes++;
          } else if (s.t === 'redeliver' && last) {
            direct.push(...firstPage(await ch.event(last.m, last.id)));
            repeats++;
          } else if (s.t === 'work') {
            if (s.fail !== 'none') producer.fail(s.pages, s.fail === 'after');
            const ran = await ch
              .worker(producer, () => clock)
              .drain()
              .then(
                () => true,
                () => false,
              );
            if (!ran) repeats++;
          } else if (s.t === 'lease') {
            clock += LEASE + 1;
          }
        }
        // Every fan-out runs to its end once its leases run out.
        clock += LEASE + 1;
        producer.disarm();
        await ch.worker(producer, () => clock).drain();
        assert.equal(await ch.store.fanoutBacklog(), 0);
        // Each member's state, from what was handed to it, holds the channel's records as they stand.
        const all = [...direct, ...producer.messages];
        for (const m of all) {
          if (m.kind === 'apply') await ch.store.apply(m.identityId, { mutations: m.mutations }, clock);
        }
        const truth = comparable(await ch.store.channelSignals(PHONE));
        for (const id of ch.members) {
          const state = await ch.store.read(id, clock);
          assert.deepEqual(comparable(state?.signals ?? []), truth, `${id}'s copy`);
        }
        // Bounded: every change reaches each member once, and each redelivery or death repeats at
        // most a page (HSCAN's count is a hint: the largest page seen is the bound).
        for (const batch of producer.sends) page = Math.max(page, batch.length);
        assert.ok(page <= 4 * ch.page, `a page of ${page}`);
        const bound = changes * ch.members.length + repeats * page;
        assert.ok(
          all.length <= bound,
          `${all.length} messages for ${changes} changes and ${repeats} repeats`,
        );
        for (const [id, n] of counts(all)) assert.ok(n <= changes + repeats, `${id} reached ${n} times`);
      }),
      { numRuns: Number(process.env.FANOUT_PROPERTY_RUNS ?? 40) },
    );
  });
});

/** Records as a member's copy must equal the channel's (the routing fields aside). */
function comparable(records: readonly SignalRecord[]) {
  return [...records]
    .map((r) => ({ k: r.k, raises: r.raises, clearedMs: r.clearedMs, liftedMs: r.liftedMs }))
    .sort((a, b) => a.k.localeCompare(b.k));
}
