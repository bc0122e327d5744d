import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { topicNames } from '@assurance/schemas';
import type { RegistryCodec } from './codec.ts';
import { provision, replicationFor } from './provision.ts';
import type { AdminPort, TopicSpec } from './types.ts';

describe('replicationFor', () => {
  test('three copies and two acknowledgements from three brokers on; a copy per broker below', () => {
    assert.deepEqual(replicationFor(1), { replicationFactor: 1, minInsyncReplicas: 1 });
    assert.deepEqual(replicationFor(2), { replicationFactor: 2, minInsyncReplicas: 2 });
    assert.deepEqual(replicationFor(3), { replicationFactor: 3, minInsyncReplicas: 2 });
    assert.deepEqual(replicationFor(7), { replicationFactor: 3, minInsyncReplicas: 2 });
  });

  test('a metadata answer naming no broker still asks for one copy, never an invalid zero', () => {
    assert.deepEqual(replicationFor(0), { replicationFactor: 1, minInsyncReplicas: 1 });
  });
});

/** What provision asks of a cluster of `brokers`: the topic specs it would create. */
async function specsFor(brokers: number, replicationFactor?: number): Promise<TopicSpec[]> {
  let asked: readonly TopicSpec[] = [];
  const admin = {
    brokerCount: async () => brokers,
    ensureTopics: async (topics: readonly TopicSpec[]) => {
      asked = topics;
      return { created: [] };
    },
  } as Partial<AdminPort> as AdminPort;
  const codec = { register: async () => 1 } as Partial<RegistryCodec> as RegistryCodec;
  await provision({
    admin,
    codec,
    topics: topicNames(''),
    internalPartitions: 4,
    ...(replicationFactor === undefined ? {} : { replicationFactor }),
  });
  return [...asked];
}

describe('provision', () => {
  test('every topic gets the replication of the cluster it is created on, min ISR included', async () => {
    for (const [brokers, rf, minIsr] of [
      [1, 1, '1'],
      [3, 3, '2'],
    ] as const) {
      const specs = await specsFor(brokers);
      assert.ok(specs.length > 1);
      for (const s of specs) {
        assert.equal(s.replicationFactor, rf, `${s.name} on ${brokers} broker(s)`);
        assert.equal(s.configs?.['min.insync.replicas'], minIsr, `${s.name} on ${brokers} broker(s)`);
      }
    }
  });

  test("the catalog's own configs are kept beside it", async () => {
    const specs = await specsFor(3);
    assert.ok(specs.every((s) => s.configs?.['cleanup.policy'] !== undefined));
  });

  test('a replication factor given explicitly wins over the count', async () => {
    const specs = await specsFor(3, 1);
    assert.ok(specs.every((s) => s.replicationFactor === 1 && s.configs?.['min.insync.replicas'] === '1'));
  });
});
