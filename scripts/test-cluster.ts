/**
 * `npm run test:cluster`: the tests that drive the store's scripts directly, run against a local
 * six-node Redis Cluster (three primaries, three replicas; infra/stack/src/redis-cluster.ts) instead
 * of the single server. Every key a script touches is hash-tagged to one slot; a script that
 * touched two would fail here with CROSSSLOT, and the oracle and property tests would fail with it.
 * `--down` stops the cluster's nodes afterwards.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exitOnStackProblem, redisClusterDown, redisClusterUp, resolveLayout } from '@assurance/stack';

const { values: opts } = parseArgs({ options: { down: { type: 'boolean', default: false } } });
const log = (m: string) => process.stderr.write(`[test:cluster] ${m}\n`);
const ROOT = path.resolve(import.meta.dirname, '..');
const FILES = [
  'test/integration/redis-store.test.ts',
  'test/integration/channel-fanout.test.ts',
  'test/integration/state-oracle.test.ts',
  'test/integration/redis-progress.test.ts',
];

const layout = resolveLayout();
const cluster = await redisClusterUp(layout, log).catch(exitOnStackProblem('[test:cluster]'));
log(`Redis Cluster ready: ${cluster.nodes}`);
const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/test.ts'), ...FILES], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, REDIS_CLUSTER_NODES: cluster.nodes },
});
if (opts.down) log(`stopped ${await redisClusterDown(layout)} cluster node(s)`);
process.exit(r.status ?? 1);
