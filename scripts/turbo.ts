/**
 * `turbo` for the root scripts (`npm run typecheck`), with telemetry off. Turbo reports usage to
 * Vercel unless told not to, and says so in a notice on every fresh machine, CI runner and
 * container; this project sends nothing anywhere. turbo.json has no setting for it, only the
 * TURBO_TELEMETRY_DISABLED variable does, and an npm script cannot set a variable portably.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const turbo = createRequire(import.meta.url).resolve('turbo/bin/turbo');
const child = spawn(process.execPath, [turbo, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
