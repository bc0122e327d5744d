import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { topicNames } from '@assurance/schemas';
import type { RegistryCodec } from './codec.ts';
import { provision } from './provision.ts';
import type { AdminPort, TopicSpec } from './types.ts';

/** The topic specs provision hands the admin. */
async function specsFor(replicationFactor?: number): Promise<TopicSpec[]> {
  let asked: readonly TopicSpec[] = [];
  const admin = {
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
  test("replication is the cluster's own (its defaults), never the count of brokers alive at start", async () => {
    const specs = await specsFor();
    assert.ok(specs.length > 1);
    for (const s of specs) {
      assert.equal(s.replicationFactor, undefined, s.name);
      assert.equal(s.configs?.['min.insync.replicas'], undefined, s.name);
      assert.equal(s.createConfigs, undefined, s.name);
    }
  });

  test('an explicit factor brings min.insync.replicas min(2, factor), at creation only', async () => {
    for (const [rf, minIsr] of [
      [1, '1'],
      [3, '2'],
    ] as const) {
      for (const s of await specsFor(rf)) {
        assert.equal(s.replicationFactor, rf);
        assert.equal(s.createConfigs?.['min.insync.replicas'], minIsr);
        // Never among the configs an existing topic is brought to: a start must not lower it.
        assert.equal(s.configs?.['min.insync.replicas'], undefined);
      }
    }
  });

  test("the catalog's own configs are kept", async () => {
    const specs = await specsFor(3);
    assert.ok(specs.every((s) => s.configs?.['cleanup.policy'] !== undefined));
  });
});
