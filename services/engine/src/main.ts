/**
 * The engine process: parse config, start, serve /metrics and /healthz, stop cleanly on SIGTERM.
 * Crash, don't limp: an uncaught error logs and exits non-zero; the supervisor restarts us.
 */
import http from 'node:http';
import { AssuranceError, createLogger } from '@assurance/core';
import { loadEngineConfig } from './config.ts';
import { startEngine } from './engine.ts';

const bootLog = createLogger('assurance-engine');

async function main(): Promise<void> {
  const config = loadEngineConfig();
  const logger = createLogger('assurance-engine', config.LOG_LEVEL);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  const engine = await startEngine(config, logger);
  const server = http.createServer(async (req, res) => {
    if (req.url === '/metrics') {
      res.setHeader('content-type', engine.metrics.registry.contentType);
      res.end(await engine.metrics.registry.metrics());
    } else if (req.url === '/healthz') {
      res.end('ok');
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  if (config.METRICS_PORT > 0) server.listen(config.METRICS_PORT, config.METRICS_HOST);

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    server.close();
    await engine.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  const err = await engine.fatal;
  logger.fatal({ err }, 'a consumer stopped for good; exiting so the supervisor restarts us');
  await engine.stop().catch(() => {});
  process.exit(1);
}

main().catch((err: unknown) => {
  if (err instanceof AssuranceError && err.code === 'config_invalid') {
    process.stderr.write(`${err.message}\n`);
  } else {
    bootLog.fatal({ err }, 'engine failed to start');
  }
  process.exit(1);
});
