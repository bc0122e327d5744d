import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '@assurance/core';
import fc from 'fast-check';
import { EngineWatch } from './engine-watch.ts';
import type { AdminPort, PartitionPosition } from './types.ts';

const MAX_STALL = 5000;
const INTERVAL = 500;

/** A cluster in memory: end offsets advance as messages arrive, committed ones as the engine works. */
class FakeCluster {
  ends = new Map<string, bigint>();
  committed = new Map<string, bigint>();
  members = 1;
  failing = false;
  /** Partitions a sample leaves out (a group mid-rebalance, a leader being elected). */
  hidden = new Set<number>();

  produce(partition: number, n = 1) {
    const k = `in|${partition}`;
    this.ends.set(k, (this.ends.get(k) ?? 0n) + BigInt(n));
  }

  commit(partition: number, upTo?: bigint) {
    const k = `in|${partition}`;
    this.committed.set(k, upTo ?? this.ends.get(k) ?? 0n);
  }

  admin(partitions: number): AdminPort {
    return {
      positions: async (): Promise<PartitionPosition[]> => {
        if (this.failing) throw new Error('broker unreachable');
        return Array.from({ length: partitions }, (_, partition) => partition)
          .filter((partition) => !this.hidden.has(partition))
          .map((partition) => ({
            topic: 'in',
            partition,
            low: 0n,
            end: this.ends.get(`in|${partition}`) ?? 0n,
            committed: this.committed.get(`in|${partition}`) ?? 0n,
            stored: this.committed.get(`in|${partition}`) ?? null,
          }));
      },
      members: async () => this.members,
      setTopicConfigs: async () => {},
      ensureTopics: async () => ({ created: [] }),
      deleteTopics: async () => [],
      lag: async () => [],
      close: async () => {},
    };
  }
}

function watch(
  cluster: FakeCluster,
  clock: { now: number },
  partitions = 2,
  maxLag = Number.POSITIVE_INFINITY,
) {
  return new EngineWatch({
    admin: cluster.admin(partitions),
    groups: [{ stage: 'router', groupId: 'g.router', topics: ['in'] }],
    intervalMs: INTERVAL,
    maxStallMs: MAX_STALL,
    maxAgeMs: 10_000,
    maxLag,
    logger: createLogger('test', 'silent'),
    clock: () => clock.now,
  });
}

describe('EngineWatch', () => {
  test('one waiting message without progress is a stall after MAX_STALL, however small the lag', async () => {
    const cluster = new FakeCluster();
    const clock = { now: 1_000_000 };
    const w = watch(cluster, clock);
    await w.refresh();
    assert.equal(w.health().state, 'ok');
    cluster.produce(1);
    clock.now += INTERVAL;
    await w.refresh();
    assert.equal(w.health().state, 'ok', 'waiting, but not for long');
    clock.now += MAX_STALL;
    await w.refresh();
    assert.equal(w.health().state, 'ok', 'exactly MAX_STALL after it was first seen is not yet a stall');
    clock.now += 1;
    await w.refresh();
    const h = w.health();
    assert.equal(h.state, 'stalled');
    assert.ok(h.state === 'stalled' && h.lag === 1 && h.stalled[0]?.partition === 1);
    cluster.commit(1);
    clock.now += INTERVAL;
    await w.refresh();
    assert.equal(w.health().state, 'ok', 'progress ends the stall');
  });

  test('a partition a sample leaves out keeps its stall: its clock is not started over', async () => {
    const cluster = new FakeCluster();
    const clock = { now: 1_000_000 };
    const w = watch(cluster, clock);
    await w.refresh();
    cluster.produce(1);
    clock.now += INTERVAL;
    await w.refresh();
    clock.now += MAX_STALL - 1000;
    cluster.hidden.add(1);
    await w.refresh();
    const h = w.health();
    assert.equal(h.state, 'ok', 'not yet stalled; the partition counts with what was last seen');
    assert.equal(h.state === 'ok' ? h.lag : -1, 1, 'its waiting message still counts');
    cluster.hidden.delete(1);
    clock.now += 1001;
    await w.refresh();
    assert.equal(
      w.health().state,
      'stalled',
      'MAX_STALL after it was first seen waiting, as if never left out',
    );
    // While left out past the stall bound, the stall stands.
    cluster.hidden.add(1);
    clock.now += INTERVAL;
    await w.refresh();
    assert.equal(w.health().state, 'stalled');
  });

  test('an engine working through a backlog is not stalled, one stuck on a partition is', async () => {
    const cluster = new FakeCluster();
    const clock = { now: 0 };
    const w = watch(cluster, clock);
    await w.refresh();
    cluster.produce(0, 1000);
    cluster.produce(1, 10);
    for (let i = 1; i <= 30; i++) {
      clock.now += INTERVAL;
      cluster.commit(0, BigInt(i * 30)); // partition 0 progresses every sample; 1 never does
      await w.refresh();
    }
    const h = w.health();
    assert.equal(h.state, 'stalled');
    assert.deepEqual(h.state === 'stalled' ? h.stalled.map((s) => s.partition) : [], [1]);
  });

  test('a watcher started while messages already wait reports them only MAX_STALL after its start', async () => {
    const cluster = new FakeCluster();
    cluster.produce(0, 3);
    const clock = { now: 50_000 };
    const w = watch(cluster, clock);
    await w.refresh();
    clock.now += MAX_STALL;
    await w.refresh();
    assert.equal(w.health().state, 'ok');
    clock.now += INTERVAL;
    await w.refresh();
    assert.equal(w.health().state, 'stalled');
  });

  test('no successful sample for maxAge: unknown; a stage without consumers is reported', async () => {
    const cluster = new FakeCluster();
    const clock = { now: 0 };
    const w = watch(cluster, clock);
    await w.refresh();
    cluster.members = 0;
    await w.refresh();
    const h = w.health();
    assert.ok(h.state !== 'unknown' && h.members.router === 0);
    cluster.failing = true;
    clock.now += 10_001;
    assert.equal(await w.refresh(), false);
    assert.equal(w.health().state, 'unknown');
  });

  test('lag beyond maxLag without a stall is lagging', async () => {
    const cluster = new FakeCluster();
    const clock = { now: 0 };
    const w = watch(cluster, clock, 1, 5);
    await w.refresh();
    cluster.produce(0, 6);
    await w.refresh();
    assert.equal(w.health().state, 'lagging');
  });

  test('property: stalled exactly when a message waits past MAX_STALL and the partition made no progress that long (oracle)', async () => {
    // Steps: produce, commit (all or some), or let time pass; the oracle replays the same facts.
    const step = fc.oneof(
      fc.record({ kind: fc.constant('produce' as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('commit' as const), some: fc.boolean() }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 3 * MAX_STALL }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const cluster = new FakeCluster();
        const clock = { now: 0 };
        const w = watch(cluster, clock, 1);
        await w.refresh();
        // Oracle: the sample time at which each offset was first seen, and when the commit last moved.
        const firstSeen: number[] = [];
        let committed = 0;
        let progressAt = 0;
        for (const s of steps) {
          if (s.kind === 'produce') cluster.produce(0, s.n);
          if (s.kind === 'commit') {
            const end = Number(cluster.ends.get('in|0') ?? 0n);
            cluster.commit(0, BigInt(s.some ? Math.ceil((committed + end) / 2) : end));
          }
          if (s.kind === 'wait') clock.now += s.ms;
          await w.refresh();
          const end = Number(cluster.ends.get('in|0') ?? 0n);
          const c = Number(cluster.committed.get('in|0') ?? 0n);
          while (firstSeen.length < end) firstSeen.push(clock.now);
          if (c !== committed) {
            committed = c;
            progressAt = clock.now;
          }
          const expected =
            end > committed && clock.now - Math.max(firstSeen[committed] as number, progressAt) > MAX_STALL;
          assert.equal(w.health().state === 'stalled', expected);
        }
      }),
      { numRuns: 300 },
    );
  });
});
