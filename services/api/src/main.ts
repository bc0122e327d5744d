/**
 * The API process: parse config, connect, listen on API_HOST:API_PORT, stop cleanly on SIGTERM
 * (stop accepting, finish requests in flight, close Kafka and Redis). Crash, don't limp: an
 * uncaught error logs and exits non-zero; the supervisor restarts us.
 */
import { AssuranceError, createLogger } from '@assurance/core';
import { loadApiConfig } from './config.ts';
import { startApi } from './server.ts';

const bootLog = createLogger('assurance-api');

async function main(): Promise<void> {
  const config = loadApiConfig();
  const logger = createLogger('assurance-api', config.LOG_LEVEL);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  const api = await startApi(config, logger);
  const address = await api.app.listen({ host: config.API_HOST, port: config.API_PORT });
  logger.info(
    { address, policyVersion: api.policy.version, tokens: config.API_TOKENS.map((t) => t.name) },
    'assurance API listening',
  );

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await api.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof AssuranceError && err.code === 'config_invalid') {
    process.stderr.write(`${err.message}\n`);
  } else {
    bootLog.fatal({ err }, 'API failed to start');
  }
  process.exit(1);
});
