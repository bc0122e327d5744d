/**
 * `npm run test:cluster`: the product on clusters (issue 14), in two parts.
 *
 * 1. The tests that drive the store's scripts directly, against the local six-node Redis Cluster
 *    (three primaries, three replicas) instead of the single server. Every key a script touches is
 *    hash-tagged to one slot; a script that touched two would fail here with CROSSSLOT, and the
 *    oracle and property tests would fail with it.
 * 2. The chaos run (test/cluster/chaos.ts) on the three-broker Kafka cluster and the Redis Cluster:
 *    engine processes SIGKILLed, leader brokers killed and restarted, a Redis primary failed over,
 *    and every identity's last decision compared with an oracle of the input. Its sizes come from
 *    CHAOS_* (the issue's by default); `--no-chaos` leaves it out.
 * 3. The network fault run (chaos.ts --network): the engines and an API reach the clusters through
 *    toxiproxy, built with `go install` the first time, which adds latency, stalls, timeouts,
 *    resets and partitions; the same comparison, and the API's answers checked (degraded while
 *    Redis is cut off, the last decision's tiers afterwards). `--no-network` leaves it out.
 *
 * `--down` stops the clusters' nodes afterwards.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { clusterDown, clusterUp, exitOnStackProblem } from '@assurance/stack';

const { values: opts } = parseArgs({
  options: {
    down: { type: 'boolean', default: false },
    'no-chaos': { type: 'boolean', default: false },
    'no-network': { type: 'boolean', default: false },
  },
});
const log = (m: string) => process.stderr.write(`[test:cluster] ${m}\n`);
const ROOT = path.resolve(import.meta.dirname, '..');
const FILES = [
  'test/integration/redis-store.test.ts',
  'test/integration/channel-fanout.test.ts',
  'test/integration/state-oracle.test.ts',
  'test/integration/redis-progress.test.ts',
];

const t0 = Date.now();
const cluster = await clusterUp(log).catch(exitOnStackProblem('[test:cluster]'));
log(
  `clusters ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: Kafka ${cluster.endpoints.KAFKA_BROKERS}, Redis ${cluster.endpoints.REDIS_CLUSTER_NODES}`,
);
const run = (args: string[]) =>
  spawnSync(process.execPath, args, {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, REDIS_CLUSTER_NODES: cluster.endpoints.REDIS_CLUSTER_NODES },
  }).status ?? 1;

let status = run([path.join(ROOT, 'scripts/test.ts'), ...FILES]);
if (status === 0 && !opts['no-chaos']) {
  log('chaos run');
  status = run([path.join(ROOT, 'test/cluster/chaos.ts')]);
}
if (status === 0 && !opts['no-network']) {
  log('network fault run');
  status = run([path.join(ROOT, 'test/cluster/chaos.ts'), '--network']);
}
if (opts.down) await clusterDown(log);
process.exit(status);
