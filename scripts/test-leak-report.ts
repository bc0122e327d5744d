/**
 * Loaded into every test file's process (scripts/test.ts passes it with --import). When a file's
 * tests are all done but something keeps the process alive, it prints what: the runner then kills
 * the file and names it, and this report says which handle to close. The timer is unref'd, so it
 * never keeps a healthy process alive itself.
 */
import { after } from 'node:test';

after(() => {
  const timer = setTimeout(
    () => {
      const handles =
        (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
      const described = handles.map((h) => {
        const o = h as {
          constructor?: { name?: string };
          remoteAddress?: string;
          remotePort?: number;
          localPort?: number;
          _idleTimeout?: number;
          pid?: number;
          spawnfile?: string;
        };
        const name = o.constructor?.name ?? typeof h;
        if (o.remotePort !== undefined) return `${name} to ${o.remoteAddress}:${o.remotePort}`;
        if (o.localPort !== undefined) return `${name} on port ${o.localPort}`;
        if (o.pid !== undefined) return `${name} pid ${o.pid} (${o.spawnfile})`;
        if (o._idleTimeout !== undefined) return `${name} of ${o._idleTimeout} ms`;
        return name;
      });
      process.stderr.write(
        `[leak] still open ${Number(process.env.TEST_LEAK_REPORT_MS ?? 10_000) / 1000} s after the last test: ${process.getActiveResourcesInfo().join(', ')}\n[leak] handles: ${described.join('; ')}\n`,
      );
    },
    Number(process.env.TEST_LEAK_REPORT_MS ?? 10_000),
  );
  timer.unref();
});
