import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kafkaClusterProperties } from './kafka-cluster.ts';
import { resolveLayout } from './layout.ts';
import { networkFaultPorts, networkFaultProxies, proxiedEndpoints } from './toxiproxy.ts';

const layout = resolveLayout({ STACK_DIR: '/srv/stack' });

describe('the network fault run’s proxies', () => {
  test('one in front of each Kafka node’s PROXIED listener, listening where that listener advertises', () => {
    const kafka = networkFaultProxies(layout).filter((p) => p.name.startsWith('kafka-'));
    assert.deepEqual(
      kafka.map((p) => [p.name, p.listen, p.upstream]),
      [
        ['kafka-1', '127.0.0.1:39122', '127.0.0.1:39112'],
        ['kafka-2', '127.0.0.1:39123', '127.0.0.1:39113'],
        ['kafka-3', '127.0.0.1:39124', '127.0.0.1:39114'],
      ],
    );
    for (const [i, p] of kafka.entries()) {
      const props = kafkaClusterProperties(layout, i + 1);
      assert.match(props, new RegExp(`^advertised\\.listeners=.*PROXIED://${p.listen}$`, 'm'));
      assert.match(props, new RegExp(`^listeners=.*PROXIED://${p.upstream}$`, 'm'));
    }
  });

  test('one in front of each Redis Cluster node, and a NAT map from each node’s own address to it', () => {
    const ends = proxiedEndpoints(layout);
    assert.equal(ends.KAFKA_BROKERS, '127.0.0.1:39122,127.0.0.1:39123,127.0.0.1:39124');
    assert.deepEqual(networkFaultPorts(layout), {
      api: 39132,
      redis: [39133, 39134, 39135, 39136, 39137, 39138],
    });
    assert.equal(
      ends.REDIS_CLUSTER_NODES,
      '127.0.0.1:39133,127.0.0.1:39134,127.0.0.1:39135,127.0.0.1:39136,127.0.0.1:39137,127.0.0.1:39138',
    );
    // Every node as the cluster announces it maps to its own proxy, so no command bypasses them.
    const nat = new Map(
      ends.REDIS_CLUSTER_NAT_MAP.split(',').map((pair) => pair.split('=') as [string, string]),
    );
    for (let i = 0; i < 6; i++) assert.equal(nat.get(`127.0.0.1:${17001 + i}`), `127.0.0.1:${39133 + i}`);
  });
});
