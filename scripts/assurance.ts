/**
 * `npm run assurance -- <command>`: the operator CLI (services/engine/src/cli.ts) pointed at the
 * local stack when REDIS_URL is not set.
 */
import { exitOnStackProblem, readEndpoints } from '@assurance/stack';

let endpoints: ReturnType<typeof readEndpoints>;
try {
  endpoints = readEndpoints();
} catch (err) {
  exitOnStackProblem('[assurance]')(err);
}
if (!process.env.REDIS_URL && endpoints) process.env.REDIS_URL = endpoints.REDIS_URL;
const { main } = await import('../services/engine/src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
