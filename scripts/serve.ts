/**
 * `npm run serve`: the local stack (or the services named by KAFKA_BROKERS, SCHEMA_REGISTRY_URL,
 * REDIS_URL) and the engine with its /metrics endpoint, no demo. Runs until stopped.
 */
import { spawn } from 'node:child_process';
import { localEnvironment } from './local-env.ts';

const env = await localEnvironment((m) => process.stderr.write(`[serve] ${m}\n`));
const engine = spawn(
  process.execPath,
  ['--disable-warning=TimeoutNegativeWarning', 'services/engine/src/main.ts'],
  {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  },
);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => engine.kill('SIGTERM'));
engine.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
