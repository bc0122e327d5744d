import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { kafkaClusterNodes, kafkaClusterPorts, kafkaClusterProperties } from './kafka-cluster.ts';
import { KAFKA_CLUSTER_PORT_SPAN, resolveLayout } from './layout.ts';
import { StackProblem } from './problems.ts';
import { networkFaultPorts } from './toxiproxy.ts';

const layout = (env: Record<string, string> = {}) => resolveLayout({ STACK_DIR: '/srv/stack', ...env });

/** A properties text as a map; a key written twice is an error (Kafka would keep the last silently). */
function parse(text: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a property: ${line}`);
    const key = line.slice(0, eq);
    assert.ok(!props.has(key), `${key} set twice`);
    props.set(key, line.slice(eq + 1));
  }
  return props;
}

describe('kafka cluster ports', () => {
  test('clients on the port and the next two, controllers ten above, proxied clients twenty and their proxy thirty', () => {
    assert.deepEqual(kafkaClusterPorts(layout()), [
      { id: 1, port: 39092, controllerPort: 39102, proxiedPort: 39112, proxyPort: 39122 },
      { id: 2, port: 39093, controllerPort: 39103, proxiedPort: 39113, proxyPort: 39123 },
      { id: 3, port: 39094, controllerPort: 39104, proxiedPort: 39114, proxyPort: 39124 },
    ]);
    assert.deepEqual(
      kafkaClusterPorts(layout({ STACK_KAFKA_CLUSTER_PORT: '40000' })).map((n) => [n.port, n.controllerPort]),
      [
        [40000, 40010],
        [40001, 40011],
        [40002, 40012],
      ],
    );
  });

  test("the layout's bound keeps the last proxy port a port", () => {
    const top = layout({ STACK_KAFKA_CLUSTER_PORT: String(65535 - KAFKA_CLUSTER_PORT_SPAN) });
    const highest = Math.max(
      ...kafkaClusterPorts(top).flatMap((n) => [n.port, n.controllerPort, n.proxiedPort, n.proxyPort]),
      ...Object.values(networkFaultPorts(top)).flat(),
    );
    assert.equal(highest, 65535);
    assert.throws(
      () => layout({ STACK_KAFKA_CLUSTER_PORT: String(65536 - KAFKA_CLUSTER_PORT_SPAN) }),
      /STACK_KAFKA_CLUSTER_PORT: Too big/,
    );
  });

  test("the defaults collide with none of the single-node stack's or the Redis Cluster's", () => {
    const l = layout();
    const others = [
      l.env.STACK_KAFKA_PORT,
      l.env.STACK_KAFKA_CONTROLLER_PORT,
      l.env.STACK_KAFKA_SECURE_PORT,
      l.env.STACK_KAFKA_MTLS_PORT,
      l.env.STACK_REGISTRY_PORT,
      l.env.STACK_REDIS_PORT,
      ...Array.from({ length: 6 }, (_, i) => l.env.STACK_REDIS_CLUSTER_PORT + i),
    ];
    const ours = [
      ...kafkaClusterPorts(l).flatMap((n) => [n.port, n.controllerPort, n.proxiedPort, n.proxyPort]),
      ...Object.values(networkFaultPorts(l)).flat(),
    ];
    assert.equal(new Set(ours).size, ours.length);
    assert.deepEqual(
      ours.filter((p) => others.includes(p)),
      [],
    );
  });

  test('a heap is a size in m or g, 384m unless set', () => {
    assert.equal(layout().env.STACK_KAFKA_CLUSTER_HEAP, '384m');
    assert.equal(layout({ STACK_KAFKA_CLUSTER_HEAP: '1g' }).env.STACK_KAFKA_CLUSTER_HEAP, '1g');
    assert.throws(() => layout({ STACK_KAFKA_CLUSTER_HEAP: '384' }), /STACK_KAFKA_CLUSTER_HEAP/);
  });
});

describe('kafkaClusterProperties', () => {
  const props = parse(kafkaClusterProperties(layout(), 2));

  test('node 2: a broker and a voter of a static three-node quorum, on loopback only', () => {
    assert.equal(props.get('process.roles'), 'broker,controller');
    assert.equal(props.get('node.id'), '2');
    assert.equal(
      props.get('controller.quorum.voters'),
      '1@127.0.0.1:39102,2@127.0.0.1:39103,3@127.0.0.1:39104',
    );
    // Static voters and a bootstrap list are two ways to find the quorum: Kafka refuses both at once.
    assert.equal(props.has('controller.quorum.bootstrap.servers'), false);
    assert.equal(
      props.get('listeners'),
      'PLAINTEXT://127.0.0.1:39093,CONTROLLER://127.0.0.1:39103,PROXIED://127.0.0.1:39113',
    );
    // Clients of the PROXIED listener are told the proxy's port, so every connection they make
    // passes it; the brokers among themselves never do.
    assert.equal(props.get('advertised.listeners'), 'PLAINTEXT://127.0.0.1:39093,PROXIED://127.0.0.1:39123');
    assert.equal(props.get('controller.listener.names'), 'CONTROLLER');
    assert.equal(
      props.get('listener.security.protocol.map'),
      'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT',
    );
    assert.equal(props.get('inter.broker.listener.name'), 'PLAINTEXT');
  });

  test('its data under the stack folder, apart from the single broker', () => {
    assert.equal(props.get('log.dirs'), path.join('/srv/stack', 'kafka-cluster', '2', 'data'));
  });

  test('every topic, internal ones included, at replication factor 3 with min ISR 2', () => {
    for (const [key, value] of [
      ['default.replication.factor', '3'],
      ['min.insync.replicas', '2'],
      ['offsets.topic.replication.factor', '3'],
      ['transaction.state.log.replication.factor', '3'],
      ['transaction.state.log.min.isr', '2'],
      ['share.coordinator.state.topic.replication.factor', '3'],
      ['share.coordinator.state.topic.min.isr', '2'],
      ['unclean.leader.election.enable', 'false'],
      ['auto.create.topics.enable', 'false'],
      ['group.initial.rebalance.delay.ms', '0'],
    ] as const)
      assert.equal(props.get(key), value, key);
  });

  test('no authorizer and no security listener: that is the single broker', () => {
    assert.equal(props.has('authorizer.class.name'), false);
    assert.deepEqual(
      [...props.keys()].filter((k) => /(^|\.)(ssl|sasl)\./.test(k)),
      [],
    );
    assert.doesNotMatch(props.get('listeners') ?? '', /SSL|SASL/);
  });

  test('the nodes differ only in their id, ports and folder', () => {
    const one = parse(kafkaClusterProperties(layout(), 1));
    const differ = [...one.keys()].filter((k) => one.get(k) !== props.get(k));
    assert.deepEqual(differ.sort(), ['advertised.listeners', 'listeners', 'log.dirs', 'node.id']);
    assert.deepEqual([...one.keys()].sort(), [...props.keys()].sort());
  });

  test('a node that does not exist is a problem naming the ones that do', () => {
    assert.throws(
      () => kafkaClusterProperties(layout(), 4),
      (err: unknown) => err instanceof StackProblem && /no node 4; the nodes are 1 to 3/.test(err.message),
    );
  });
});

describe('kafkaClusterNodes', () => {
  test('in a stack folder that never ran the cluster, every node is down', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kafka-cluster-'));
    try {
      assert.deepEqual(
        kafkaClusterNodes(resolveLayout({ STACK_DIR: dir })).map((n) => [n.id, n.pid]),
        [
          [1, undefined],
          [2, undefined],
          [3, undefined],
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
