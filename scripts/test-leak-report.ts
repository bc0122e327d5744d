/**
 * Loaded into every test file's process (scripts/test.ts passes it with --import). When a file's
 * tests are all done but something keeps the process alive, it writes down what (into
 * TEST_LEAK_DIR, which the runner reads when it kills the file, or to stderr). The timer is
 * unref'd, so it never keeps a healthy process alive itself.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';

interface HandleLike {
  constructor?: { name?: string };
  remoteAddress?: string;
  remotePort?: number;
  localPort?: number;
  pid?: number;
  spawnfile?: string;
}

function describeHandle(h: unknown): string {
  const o = h as HandleLike;
  const name = o.constructor?.name ?? typeof h;
  if (o.remotePort !== undefined) return `${name} to ${o.remoteAddress}:${o.remotePort}`;
  if (o.localPort !== undefined) return `${name} on port ${o.localPort}`;
  if (o.pid !== undefined) return `${name} pid ${o.pid} (${o.spawnfile})`;
  return name;
}

const AFTER_MS = Number(process.env.TEST_LEAK_REPORT_MS ?? 10_000);

after(() => {
  const timer = setTimeout(() => {
    const handles =
      (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
    const report = `still open ${AFTER_MS / 1000} s after the last test: ${process.getActiveResourcesInfo().join(', ')}; handles: ${handles.map(describeHandle).join('; ')}`;
    const dir = process.env.TEST_LEAK_DIR;
    if (dir) writeFileSync(path.join(dir, `${process.pid}.leak`), report);
    else process.stderr.write(`[leak] ${report}\n`);
  }, AFTER_MS);
  timer.unref();
});
