/**
 * `npm run serve`: the local stack (or the services named by KAFKA_BROKERS, SCHEMA_REGISTRY_URL,
 * REDIS_URL), the engine with its /metrics endpoint and the HTTP API, no demo. Runs until stopped;
 * when either process exits, the other is stopped too.
 */
import { spawn } from 'node:child_process';
import { exitOnStackProblem } from '@assurance/stack';
import { localApiToken, localEnvironment } from './local-env.ts';

const log = (m: string) => process.stderr.write(`[serve] ${m}\n`);
const env = await localEnvironment(log).catch(exitOnStackProblem('[serve]'));
const start = (main: string, extra: Record<string, string> = {}) =>
  spawn(process.execPath, [main], {
    stdio: 'inherit',
    env: { ...process.env, ...env, ...extra },
  });
const engine = start('services/engine/src/main.ts');
// API_TOKENS from the environment wins; otherwise one dev token with both scopes, kept in .stack/.
const token = process.env.API_TOKENS ? undefined : localApiToken();
const api = start(
  'services/api/src/main.ts',
  token ? { API_TOKENS: `dev:${token}:decisions:read+signals:write` } : {},
);
const where = `http://${process.env.API_HOST ?? '127.0.0.1'}:${process.env.API_PORT ?? '8080'}`;
log(`HTTP API on ${where}${token ? `, dev token (decisions:read, signals:write): ${token}` : ''}`);

const children = [engine, api];
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of children) c.kill('SIGTERM');
  });
}
let exitCode: number | undefined;
for (const child of children) {
  child.on('exit', (code, signal) => {
    exitCode ??= code ?? (signal ? 1 : 0);
    for (const c of children) if (c !== child && c.exitCode === null) c.kill('SIGTERM');
    if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(exitCode);
  });
}
