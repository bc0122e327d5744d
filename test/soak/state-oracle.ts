/**
 * The state property at length (`npm run soak:state`): thousands of generated runs against the
 * model, on the stack `npm test` uses. Prints its seed first, so a failure can be replayed:
 *
 *   npm run soak:state -- --runs 5000 [--seed 123] [--minutes 30]
 *   STATE_ORACLE_SEED=123 npm test -- test/integration/state-oracle.test.ts
 */
import { parseArgs } from 'node:util';
import { defineScripts } from '@assurance/redis';
import { Redis } from 'ioredis';
import { endpoints } from '../src/harness.ts';
import { checkStateProperty } from '../src/state-property.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5000' },
    seed: { type: 'string' },
    minutes: { type: 'string', default: '30' },
  },
});
const runs = Number(values.runs);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed)) {
  process.stderr.write('usage: npm run soak:state -- [--runs N] [--seed S] [--minutes M]\n');
  process.exit(2);
}
process.stdout.write(`state oracle soak: ${runs} runs, seed ${seed}\n`);
const redis = new Redis((await endpoints()).REDIS_URL, { enableAutoPipelining: true });
defineScripts(redis);
const started = Date.now();
try {
  const made = await checkStateProperty({
    redis,
    runs,
    seed,
    searchLimitMs: Number(values.minutes) * 60_000,
    shrinkLimitMs: 10 * 60_000,
  });
  process.stdout.write(
    `state oracle soak: ${made} of ${runs} runs passed in ${((Date.now() - started) / 1000).toFixed(0)} s (seed ${seed})${made < runs ? `; --minutes ${values.minutes} ended it` : ''}\n`,
  );
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await redis.quit();
}
