import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { MetaStore, RedisConnection, StoreStatus } from '@assurance/redis';
import { STATE_FORMAT } from '@assurance/redis';
import { StoreTrust } from './store-trust.ts';

/** A trust over a connection that only emits events, and a meta that names `runId`. */
async function trustOn(runId: string) {
  const redis = new EventEmitter() as unknown as RedisConnection;
  const meta = { runId: async () => runId } as Partial<MetaStore> as MetaStore;
  const trust = new StoreTrust(redis, meta, 'policy-a', createLogger('test', 'silent'));
  await trust.refresh();
  return { trust, redis: redis as unknown as EventEmitter };
}

const status = (over: Partial<StoreStatus> = {}): StoreStatus => ({
  epoch: 1,
  policy: 'policy-a',
  verifiedRunId: 'aaa+bbb+ccc',
  format: STATE_FORMAT,
  recovering: 0,
  ...over,
});

test('one server: trusted only while the connection reaches the process verified', async () => {
  const { trust, redis } = await trustOn('aaa');
  assert.deepEqual(trust.reasons(status({ verifiedRunId: 'aaa' })), []);
  assert.deepEqual(trust.reasons(status({ verifiedRunId: 'zzz' })), ['store_unverified']);
  // A dropped connection may come back to another process: distrust until the run id is read again.
  redis.emit('close');
  assert.deepEqual(trust.reasons(status({ verifiedRunId: 'aaa' })), ['store_unverified']);
  trust.stop();
});

test('a cluster: an identity read is trusted only if the primary that served it was verified', async () => {
  const { trust } = await trustOn('aaa+bbb+ccc');
  assert.deepEqual(trust.reasons(status({ servedBy: 'bbb' })), []);
  // That primary failed over (or restarted) since the store was verified: its answer may lack writes.
  assert.deepEqual(trust.reasons(status({ servedBy: 'ddd' })), ['store_unverified']);
  assert.deepEqual(trust.reasons(status({ servedBy: 'bbb', verifiedRunId: null })), ['store_unverified']);
  trust.stop();
});

test('a cluster topology change distrusts answers without an identity until the run ids are read again', async () => {
  const { trust, redis } = await trustOn('aaa+bbb+ccc');
  assert.deepEqual(trust.reasons(status()), []);
  redis.emit('-node');
  assert.equal(trust.runId, null);
  assert.deepEqual(trust.reasons(status()), ['store_unverified']);
  await trust.refresh();
  assert.deepEqual(trust.reasons(status()), []);
  trust.stop();
});
