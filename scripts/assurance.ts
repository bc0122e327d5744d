/**
 * `npm run assurance -- <command>`: the operator CLI (services/engine/src/cli.ts; `ssf ...` is
 * packages/ssf/src/cli.ts) pointed at the
 * local stack when REDIS_URL is not set, with the local engine's signing key when
 * DECISION_SIGNING_KEY is not set.
 */
import { exitOnStackProblem, readEndpoints } from '@assurance/stack';
import { localSigningKey } from './local-env.ts';

let endpoints: ReturnType<typeof readEndpoints>;
try {
  endpoints = readEndpoints();
} catch (err) {
  exitOnStackProblem('[assurance]')(err);
}
// A Redis Cluster named in the environment is the store; else the local stack's Redis.
if (!process.env.REDIS_URL && !process.env.REDIS_CLUSTER_NODES && endpoints)
  process.env.REDIS_URL = endpoints.REDIS_URL;
if (!process.env.DECISION_SIGNING_KEY && process.argv[2] === 'keys' && process.argv[3] === 'public')
  process.env.DECISION_SIGNING_KEY = localSigningKey();
if (process.argv[2] === 'ssf') {
  // Shared Signals streams at the transmitters (packages/ssf): no store needed.
  const { ssfMain } = await import('@assurance/ssf');
  process.exitCode = await ssfMain(process.argv.slice(3));
} else {
  const { main } = await import('../services/engine/src/cli.ts');
  process.exitCode = await main(process.argv.slice(2));
}
