import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AssuranceError } from '@assurance/core';
import { keySpace, MetaStore, type RedisConnection, StateReader } from '@assurance/redis';
import { Cluster } from 'ioredis';
import { storeRedis, uniquePrefix } from '../src/harness.ts';

/**
 * The progress records the engine compares with Kafka's committed offsets to find data Redis lost
 * (docs/state.md, data loss), on one server and, under `npm run test:cluster`, on a cluster where
 * each primary keeps a copy and a primary that lost writes loses its copy's latest progress.
 */

let redis: RedisConnection;
before(async () => {
  redis = await storeRedis();
});
after(() => redis.quit());

const at = 1_700_000_000_000;
const entry = (partition: number, nextOffset: string) => ({
  stage: 'decider',
  topic: 'in',
  partition,
  nextOffset,
});
const offsets = async (meta: MetaStore) =>
  Object.fromEntries((await meta.progress()).map((p) => [p.partition, p.nextOffset]));

test('progress has a copy on every primary, and the oldest copy is what the store has done', async () => {
  const meta = new MetaStore(redis, keySpace(uniquePrefix()));
  const shards = meta.progressShards();
  const primaries = redis instanceof Cluster ? redis.nodes('master').length : 1;
  assert.equal(shards.length, primaries);
  if (redis instanceof Cluster) {
    // Each copy on its own primary, so no primary can lose writes and keep its progress.
    const cluster = redis;
    const slots = await Promise.all(shards.map((s) => cluster.call('CLUSTER', 'KEYSLOT', s.progress)));
    const owners = new Set(slots.map((slot) => cluster.slots[Number(slot)]?.[0]));
    assert.equal(owners.size, primaries);
  }
  await meta.recordProgress([entry(0, '10'), entry(1, '20')], at);
  assert.deepEqual(await offsets(meta), { 0: '10', 1: '20' });
  const last = shards.at(-1);
  assert.ok(last);
  if (shards.length > 1) {
    // A copy behind (its primary failed over to a replica that missed the last writes): that copy counts.
    await redis.hset(last.progress, 'decider|in|1', `15|${at}`);
    assert.deepEqual(await offsets(meta), { 0: '10', 1: '15' });
    // A copy gone (a primary that lost everything): every partition replays from the log's start.
    await redis.del(last.progress);
    assert.deepEqual(await offsets(meta), { 0: '-1', 1: '-1' });
  }
});

test('under a seal, a progress write to a server that is not the sealed process is refused and changes nothing there', async () => {
  const meta = new MetaStore(redis, keySpace(uniquePrefix()));
  await meta.recordProgress([entry(0, '10')], at);
  const seal = await meta.seal();
  assert.ok(await meta.sealHolds(seal));
  // The server of the last copy restarted or failed over: another process holds it now.
  const moved = seal.map((s, i) => (i === seal.length - 1 ? { ...s, runId: '0'.repeat(40) } : s));
  assert.equal(await meta.sealHolds(moved), false);
  meta.installSeal(moved);
  await assert.rejects(
    meta.recordProgress([entry(0, '11')], at),
    (err: unknown) => err instanceof AssuranceError && err.code === 'store_lost',
  );
  // The refused copy still says 10, so the store's progress does too: Kafka's offset 11 will read
  // as ahead of Redis, which is how the engine finds what that server lost.
  assert.deepEqual(await offsets(meta), { 0: '10' });
  meta.installSeal(seal);
  await meta.recordProgress([entry(0, '11')], at);
  assert.deepEqual(await offsets(meta), { 0: '11' });
});

test('a read names the primary that served it on a cluster, and nothing on one server', async () => {
  const keys = keySpace(uniquePrefix());
  const { status } = await new StateReader(redis, keys).readWithStatus('someone', Date.now());
  if (redis instanceof Cluster) {
    assert.ok(status.servedBy, 'a cluster read names its primary');
    assert.ok((await new MetaStore(redis, keys).runId()).split('+').includes(status.servedBy));
  } else {
    assert.equal(status.servedBy, undefined);
  }
});
