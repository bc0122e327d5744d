import { after, before, test } from 'node:test';
import type { RedisConnection } from '@assurance/redis';
import { storeRedis } from '../src/harness.ts';
import { checkStateProperty } from '../src/state-property.ts';

/**
 * The state model against an oracle (docs/state.md): fast-check generates phases of events over
 * three identities that share two phones, a mailbox, two devices and a sync account, delivers them
 * to the real router and decider on the real Redis with redeliveries, bounded reordering (per key
 * order kept, as Kafka keeps it), replays under another source, replays of earlier phases' events
 * after the late-event window, SOC ids reused across subjects, logins dated beyond the clock skew,
 * and clock jumps: short ones, ones of about a week (activity on one side only across more than
 * STATE_TTL), and ones past STATE_TTL. After every phase, every identity's signals, bindings,
 * tenant and decision must be what the model (test/src/state-model.ts) says.
 *
 * `STATE_ORACLE_RUNS` sets the number of runs (the soak, `npm run soak:state`, runs thousands);
 * `STATE_ORACLE_SEED` replays a run; a failure prints both and the shrunk counterexample.
 */

const RUNS = Number(process.env.STATE_ORACLE_RUNS ?? 300);
const SEED = process.env.STATE_ORACLE_SEED === undefined ? undefined : Number(process.env.STATE_ORACLE_SEED);

let redis: RedisConnection;
before(async () => {
  redis = await storeRedis();
});
after(() => redis.quit());

// Every run is made, however slow the machine (a busy CI one takes minutes): the runner's default
// timeout would turn slowness into a failure.
test(`the engine's state and decisions equal the model's (${RUNS} generated runs)`, {
  timeout: 15 * 60_000,
}, async () => {
  await checkStateProperty({
    redis,
    runs: RUNS,
    ...(SEED === undefined ? {} : { seed: SEED }),
    // Shrinking a failure can take long: report what it has found before the test times out.
    shrinkLimitMs: Number(process.env.STATE_ORACLE_SHRINK_LIMIT ?? 120_000),
  });
});
