import { AssuranceError } from './errors.ts';
import type { Logger } from './logger.ts';
import { createLogger } from './logger.ts';

/**
 * The shape every service process shares (STYLE.md: crash, don't limp). `start` parses config,
 * connects and returns the logger and a `stop` that finishes work in flight; SIGTERM/SIGINT call it
 * and exit 0. An uncaught error logs and exits 1 with no attempt at recovery; a bad configuration
 * prints its one-line-per-problem message and exits 1.
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
    const shutdown = async (signal: string) => {
      logger.info({ signal }, 'shutting down');
      await stop();
      process.exit(0);
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
    if (fatal) {
      const err = await fatal;
      logger.fatal({ err }, 'stopped for good; exiting so the supervisor restarts us');
      await stop().catch(() => {});
      process.exit(1);
    }
  };
  main().catch((err: unknown) => {
    if (err instanceof AssuranceError && err.code === 'config_invalid')
      process.stderr.write(`${err.message}\n`);
    else bootLog.fatal({ err }, `${name} failed to start`);
    process.exit(1);
  });
}
