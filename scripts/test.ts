/**
 * `npm test`: every test. Unit tests need nothing; integration and end-to-end tests get the real
 * stack (started here if needed, see test/src/harness.ts) through KAFKA_BROKERS,
 * SCHEMA_REGISTRY_URL and REDIS_URL. `npm run test:unit` runs only the unit tests.
 */
import { spawn } from 'node:child_process';
import { globSync } from 'node:fs';

const unitOnly = process.argv.includes('--unit');
const log = (m: string) => process.stderr.write(`[test] ${m}\n`);

const unit = globSync([
  'schemas/src/**/*.test.ts',
  'packages/*/src/**/*.test.ts',
  'infra/*/src/**/*.test.ts',
  'services/*/src/**/*.test.ts',
]);
const system = unitOnly
  ? []
  : globSync(['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/faults/**/*.test.ts']);

const env: NodeJS.ProcessEnv = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' };
if (system.length > 0) {
  const { endpoints } = await import('../test/src/harness.ts');
  const { exitOnStackProblem } = await import('@assurance/stack');
  const t0 = Date.now();
  Object.assign(env, await endpoints().catch(exitOnStackProblem('[test]')));
  log(
    `stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${env.KAFKA_BROKERS} ${env.SCHEMA_REGISTRY_URL} ${env.REDIS_URL}`,
  );
}

const files = [...unit, ...system].sort();
log(`${unit.length} unit and ${system.length} system test files`);
const child = spawn(
  process.execPath,
  [
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${process.env.TEST_CONCURRENCY ?? '2'}`,
    '--test-timeout=180000',
    // A test file whose cleanup failed must not hold the whole run open on a stray handle.
    '--test-force-exit',
    ...files,
  ],
  { stdio: 'inherit', env },
);
const code: number = await new Promise((resolve) =>
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))),
);
process.exit(code);
