import { AssuranceError } from './errors.ts';
import type { Logger } from './logger.ts';
import { createLogger } from './logger.ts';

/** How long a stop may take before the process exits anyway (an orchestrator would SIGKILL it). */
const STOP_DEADLINE_MS = 15_000;

/**
 * The shape every service process shares (STYLE.md: crash, don't limp). `start` parses config,
 * connects and returns the logger and a `stop` that finishes work in flight; SIGTERM/SIGINT call it
 * once (a second signal is not a second stop) and exit 0. An uncaught error logs and exits 1 with no
 * attempt at recovery; a bad configuration prints its one-line-per-problem message and exits 1.
 *
 * Under a supervisor (ASSURANCE_SUPERVISED=1, see scripts/supervisor.ts) the process also stops when
 * its stdin closes: the supervisor is gone, even if it was killed outright, and an orphan would keep
 * holding partitions of the consumer groups.
 */
export function runService(
  name: string,
  start: () => Promise<{ logger: Logger; stop: () => Promise<void>; fatal?: Promise<Error> }>,
): void {
  const bootLog = createLogger(name);
  const main = async () => {
    const { logger, stop, fatal } = await start();
    process.on('uncaughtException', (err) => {
      logger.fatal({ err }, 'uncaught exception');
      process.exit(1);
    });
    process.on('unhandledRejection', (err) => {
      logger.fatal({ err }, 'unhandled rejection');
      process.exit(1);
    });
    let stopping = false;
    const shutdown = async (why: string, code = 0) => {
      if (stopping) return;
      stopping = true;
      logger.info({ why }, 'shutting down');
      const deadline = setTimeout(() => {
        logger.error({ deadlineMs: STOP_DEADLINE_MS }, 'stop took too long; exiting anyway');
        process.exit(1);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      try {
        await stop();
        logger.info('stopped');
      } catch (err) {
        logger.error({ err }, 'stop failed');
        code = 1;
      }
      process.exit(code);
    };
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void shutdown(signal));
    if (process.env.ASSURANCE_SUPERVISED === '1') {
      process.stdin.on('end', () => void shutdown('supervisor gone'));
      process.stdin.on('error', () => void shutdown('supervisor gone'));
      process.stdin.resume();
    }
    if (fatal) {
      const err = await fatal;
      logger.fatal({ err }, 'stopped for good; exiting so the supervisor restarts us');
      await shutdown('fatal error', 1);
    }
  };
  main().catch((err: unknown) => {
    if (err instanceof AssuranceError && err.code === 'config_invalid')
      process.stderr.write(`${err.message}\n`);
    else bootLog.fatal({ err }, `${name} failed to start`);
    process.exit(1);
  });
}
