/**
 * The API process: parse config, connect, listen on API_HOST:API_PORT, stop cleanly on SIGTERM
 * (stop accepting, finish requests in flight, close Kafka and Redis). Crash, don't limp: an
 * uncaught error logs and exits non-zero; the supervisor restarts us.
 */
import { createLogger, runService } from '@assurance/core';
import { loadApiConfig } from './config.ts';
import { startApi } from './server.ts';

runService('assurance-api', async () => {
  const config = loadApiConfig();
  const logger = createLogger('assurance-api', config.LOG_LEVEL);
  const api = await startApi(config, logger);
  const address = await api.app.listen({ host: config.API_HOST, port: config.API_PORT });
  logger.info(
    { address, policyVersion: api.policy.version, tokens: config.API_TOKENS.map((t) => t.name) },
    'assurance API listening',
  );
  return { logger, stop: () => api.stop() };
});
