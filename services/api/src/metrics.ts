import type { EngineHealth } from '@assurance/kafka';
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The API's own Prometheus registry (never the global one). Labels are bounded: methods, route
 * templates (`/v1/identities/:id/assurance`, never the raw URL), status codes, a closed list of
 * degradation reasons. Never an identity, token name or channel.
 */
export function createApiMetrics(registry: Registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'assurance_api_' });
  let engineHealth: () => EngineHealth | undefined = () => undefined;
  return {
    registry,
    /** Where scrapes read the engine's health from (the watch starts after the metrics exist). */
    readEngineHealthFrom(source: () => EngineHealth) {
      engineHealth = source;
    },
    duration: new Histogram({
      name: 'assurance_api_http_request_duration_seconds',
      help: 'HTTP request duration, by method, route template and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'assurance_api_http_requests_total',
      help: 'HTTP requests answered, by method, route template and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    degraded: new Counter({
      name: 'assurance_api_degraded_answers_total',
      help: 'Answers that carried the strictest requirement instead of the decision, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    evaluationFailures: new Counter({
      name: 'assurance_api_evaluation_failures_total',
      help: 'Policy evaluations that threw; each answer was the strictest requirement instead',
      registers: [registry],
    }),
    engineLag: new Gauge({
      name: 'assurance_api_engine_lag_messages',
      help: 'Engine consumer lag as last measured, by stage (router, decider)',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    engineStalled: new Gauge({
      name: 'assurance_api_engine_stalled_partitions',
      help: 'Engine input partitions with a message waiting longer than MAX_STALL without progress',
      registers: [registry],
    }),
    lagSampleAge: new Gauge({
      name: 'assurance_api_engine_lag_sample_age_seconds',
      help: 'Age of the last successful sample of the engine offsets (-1: never sampled)',
      registers: [registry],
      collect() {
        const age = engineHealth()?.ageMs;
        this.set(age === null || age === undefined ? -1 : age / 1000);
      },
    }),
    ssfSourceHealthy: new Gauge({
      name: 'assurance_ssf_source_healthy',
      help: "1 while a Shared Signals transmitter's stream is known to be healthy; 0 while its tiers fail closed",
      labelNames: ['transmitter'] as const,
      registers: [registry],
    }),
    ssfQueued: new Counter({
      name: 'assurance_ssf_transmitted_sets_total',
      help: 'Security Event Tokens our transmitter queued for its receivers, by event type',
      labelNames: ['event'] as const,
      registers: [registry],
    }),
    ssfPushed: new Counter({
      name: 'assurance_ssf_push_attempts_total',
      help: 'Pushes of our Security Event Tokens, by outcome: accepted, refused (400), retry, dead_lettered',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    ssfSets: new Counter({
      name: 'assurance_ssf_sets_total',
      help:
        'Security Event Tokens received, by transmitter (configured names; "(unknown)" otherwise) and ' +
        'outcome: signal, verification, ignored_<why>, rejected_<reason>, retry (keys or Kafka unavailable)',
      labelNames: ['transmitter', 'outcome'] as const,
      registers: [registry],
    }),
    signals: new Counter({
      name: 'assurance_api_signals_submitted_total',
      help: 'SOC signals acknowledged by Kafka, by op (raise, clear)',
      labelNames: ['op'] as const,
      registers: [registry],
    }),
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;

/** Label for requests that matched no route: one series however many URLs are probed. */
export const UNMATCHED_ROUTE = 'unmatched';

/** Times every answered request, labelled by the route template fastify matched. */
export function installHttpMetrics(app: FastifyInstance, metrics: ApiMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      status: String(reply.statusCode),
    };
    metrics.duration.observe(labels, reply.elapsedTime / 1000);
    metrics.requests.inc(labels);
  });
}
