/**
 * `npm run serve`: the local stack (or the services named by KAFKA_BROKERS, SCHEMA_REGISTRY_URL,
 * REDIS_URL), the engine with its /metrics endpoint and the HTTP API, no demo. Runs until stopped;
 * a service that exits by itself is restarted (scripts/supervisor.ts).
 */
import { startLocalPipeline } from './local-pipeline.ts';

const log = (m: string) => process.stderr.write(`[serve] ${m}\n`);
const { apiUrl, token, supervisor } = await startLocalPipeline('serve', log);
log(
  `HTTP API on ${apiUrl}${token ? ` (dev token in .stack/api-dev-token: every scope but ssf:stream)` : ''}`,
);
log(`SOC console on ${apiUrl}/console (sign in with a token)`);
log('running until Ctrl-C');

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    const t0 = Date.now();
    log('stopping…');
    void supervisor.stop().then(() => {
      log(
        `stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s (the stack keeps running: npm run stack:down stops it)`,
      );
      process.exit(0);
    });
  });
}
