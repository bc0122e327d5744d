import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiMetrics } from '../metrics.ts';
import { sendProblem } from '../problem.ts';
import type { ReadinessDeps } from '../readiness.ts';
import { readiness } from '../readiness.ts';
import { defineRoute, mount } from '../route-spec.ts';
import { Health, Readiness } from '../schemas.ts';

/** Unauthenticated operations routes: liveness, readiness, Prometheus, the OpenAPI document. */

export const healthz = defineRoute({
  operationId: 'healthz',
  method: 'GET',
  path: '/healthz',
  tag: 'operations',
  summary: 'Liveness: the process is up and serving',
  responses: { 200: { description: 'Alive', schema: Health } },
});

export const readyz = defineRoute({
  operationId: 'readyz',
  method: 'GET',
  path: '/readyz',
  tag: 'operations',
  summary: 'Readiness: Kafka, Redis and the registry reachable, the engine within its lag bound',
  description:
    'While not ready the API still answers, fail-closed. 503 is a problem document whose ' +
    '`checks` member has the same shape as the 200 body. Each check says what it saw only to a ' +
    'bearer token with `ops:read`; to anyone else, `ok` or `failing`.',
  responses: { 200: { description: 'Ready', schema: Readiness } },
  problems: ['not_ready'],
});

export const metricsRoute = defineRoute({
  operationId: 'metrics',
  method: 'GET',
  path: '/metrics',
  tag: 'operations',
  summary: 'Prometheus metrics of this process',
  responses: {
    200: { description: 'Prometheus text exposition format', contentType: 'text/plain; version=0.0.4' },
  },
});

export const openApiRoute = defineRoute({
  operationId: 'openapi',
  method: 'GET',
  path: '/openapi.json',
  tag: 'operations',
  summary: 'This OpenAPI 3.1 document',
  responses: { 200: { description: 'The document', contentType: 'application/json' } },
});

export interface OpsDeps {
  readonly readiness: ReadinessDeps;
  readonly metrics: ApiMetrics;
  /** The document, built once at start. */
  readonly openApi: object;
  /** Whether the request carries a token with `ops:read`: only then does readiness say what it saw. */
  readonly mayReadDetails: (request: FastifyRequest) => boolean;
}

export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  mount(app, healthz, async () => ({ status: 'ok' }));

  mount(app, readyz, async (_input, request, reply) => {
    const seen = await readiness(deps.readiness);
    // What each check saw names internal addresses and states: for operators only.
    const result = deps.mayReadDetails(request)
      ? seen
      : {
          ...seen,
          checks: Object.fromEntries(
            Object.entries(seen.checks).map(([name, c]) => [
              name,
              { ok: c.ok, detail: c.ok ? 'ok' : 'failing' },
            ]),
          ) as typeof seen.checks,
        };
    if (result.status === 'ready') return result;
    const failing = Object.entries(result.checks)
      .filter(([, c]) => !c.ok)
      .map(([name]) => name);
    return sendProblem(request, reply, 'not_ready', `failing: ${failing.join(', ')}`, {
      checks: result.checks,
    });
  });

  mount(app, metricsRoute, async (_input, _request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  mount(app, openApiRoute, async (_input, _request, reply) => {
    reply.type('application/json; charset=utf-8');
    return deps.openApi;
  });
}
