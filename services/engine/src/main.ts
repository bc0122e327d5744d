/**
 * The engine process: parse config, start, serve /metrics and /healthz, stop cleanly on SIGTERM.
 * Crash, don't limp: an uncaught error logs and exits non-zero; the supervisor restarts us.
 */
import http from 'node:http';
import { createLogger, runService } from '@assurance/core';
import { loadEngineConfig } from './config.ts';
import { startEngine } from './engine.ts';

runService('assurance-engine', async () => {
  const config = loadEngineConfig();
  const logger = createLogger('assurance-engine', config.LOG_LEVEL);
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
  return {
    logger,
    fatal: engine.fatal,
    stop: async () => {
      server.close();
      await engine.stop();
    },
  };
});
