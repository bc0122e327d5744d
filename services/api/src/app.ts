import { randomUUID } from 'node:crypto';
import type { Logger } from '@assurance/core';
import type { EngineHealth, ProducerPort } from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import type { StateReader, StoreStatus } from '@assurance/redis';
import { bindingRefOf } from '@assurance/schemas';
import type { SetReceiver } from '@assurance/ssf';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import Fastify, { LogController } from 'fastify';
import { AssuranceReader } from './assurance-reader.ts';
import { authorize, installAuth } from './auth.ts';
import type { ActivitySource } from './console/activity.ts';
import { registerConsole } from './console/routes.ts';
import type { ApiMetrics } from './metrics.ts';
import { installHttpMetrics } from './metrics.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { installProblemHandlers } from './problem.ts';
import type { ReadinessDeps } from './readiness.ts';
import type { RouteSpec } from './route-spec.ts';
import { registerAssuranceRoutes } from './routes/assurance.ts';
import { ROUTES } from './routes/index.ts';
import { registerOpsRoutes } from './routes/ops.ts';
import { registerSignalRoutes } from './routes/signals.ts';
import { registerSsfRoutes } from './routes/ssf.ts';
import { registerSsfTxRoutes, type SsfTxRouteDeps } from './routes/ssf-tx.ts';
import type { DegradedReason } from './schemas.ts';
import type { SourceFloor } from './source-health.ts';
import type { TokenGrant } from './tokens.ts';

/** Everything the HTTP app needs, already connected: buildApp itself does no I/O. */
export interface AppDeps {
  readonly logger: Logger;
  readonly policy: Policy;
  readonly store: StateReader;
  /** Why the store cannot be answered from now (store-trust.ts). */
  readonly storeReasons: (status: StoreStatus) => DegradedReason[];
  readonly producer: ProducerPort;
  /** The namespaced `identity.compromise-signal.v1`. */
  readonly signalTopic: string;
  readonly tokens: readonly TokenGrant[];
  readonly engine: { health(): EngineHealth };
  readonly readiness: Omit<ReadinessDeps, 'engine'>;
  readonly metrics: ApiMetrics;
  readonly bodyLimit: number;
  readonly produceTimeoutMs: number;
  /** The engine's channel secret, to judge `completed.channel` in verify; optional (config.ts). */
  readonly channelHashSecret?: string | undefined;
  /** Shared Signals receiving (SSF_TRANSMITTERS_FILE); absent: its routes answer 404. */
  readonly ssfReceiver?: SetReceiver | undefined;
  /** Tiers that fail closed while a transmitter's stream is unhealthy (source-health.ts). */
  readonly sourceFloor?: (() => SourceFloor | undefined) | undefined;
  /** Candidate policies by name, for what-if reads (SHADOW_POLICIES). */
  readonly shadowPolicies?: ReadonlyMap<string, Policy>;
  /** Our own Shared Signals transmitter (SSF_ISSUER); absent: its routes answer 404. */
  readonly ssfTransmitter?: SsfTxRouteDeps['transmitter'];
  /** The console's timelines and overview (console/activity.ts); absent: the console shows none. */
  readonly activity?: ActivitySource;
}

/**
 * The fastify app: problem+json errors, bearer auth before body parsing, per-route metrics, and
 * the route groups. Identity ids are URL path segments up to 200 characters; fastify's default
 * param limit (100) would turn longer ones into a 404, so the limit is raised and zod enforces 200.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    // Our pino logger, typed as fastify's base logger so plugins and hooks share one instance type.
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.bodyLimit,
    routerOptions: { maxParamLength: 1024 },
    // Request ids are UUIDs (never taken from the client): they appear in every log line of the
    // request and as the problem `instance` (urn:uuid:<id>).
    genReqId: () => randomUUID(),
    // fastify's own request logs print raw URLs, which carry identity ids: we log route templates.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    return503OnClosing: true,
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url,
        status: reply.statusCode,
        ms: reply.elapsedTime,
      },
      'request',
    );
  });
  installProblemHandlers(app, allowedMethods(ROUTES));
  installAuth(app, deps.tokens);
  installHttpMetrics(app, deps.metrics);

  const engineHealth = () => deps.engine.health();
  const reader = new AssuranceReader({
    store: deps.store,
    policy: deps.policy,
    engineHealth,
    storeReasons: deps.storeReasons,
    metrics: deps.metrics,
    logger: deps.logger,
    ...(deps.sourceFloor ? { sourceFloor: deps.sourceFloor } : {}),
  });
  const secret = deps.channelHashSecret;
  registerAssuranceRoutes(
    app,
    reader,
    secret ? (channel) => bindingRefOf(secret, channel) : undefined,
    deps.shadowPolicies,
  );
  const explain = {
    store: deps.store,
    policy: deps.policy,
    engineHealth,
    storeReasons: deps.storeReasons,
    onEvaluationFailure: (err: unknown) => {
      deps.metrics.evaluationFailures.inc();
      deps.logger.error({ err }, 'policy evaluation failed; explaining the strictest requirement');
    },
  };
  registerSignalRoutes(app, {
    explain,
    producer: deps.producer,
    topic: deps.signalTopic,
    produceTimeoutMs: deps.produceTimeoutMs,
    metrics: deps.metrics,
    logger: deps.logger,
  });
  registerConsole(app, {
    tokens: deps.tokens,
    reader,
    explain,
    signals: { producer: deps.producer, topic: deps.signalTopic, produceTimeoutMs: deps.produceTimeoutMs },
    ...(deps.shadowPolicies ? { shadowPolicies: deps.shadowPolicies } : {}),
    ...(deps.activity ? { activity: deps.activity } : {}),
    engineHealth,
  });
  registerSsfRoutes(app, { receiver: deps.ssfReceiver, metrics: deps.metrics, logger: deps.logger });
  registerSsfTxRoutes(app, { transmitter: deps.ssfTransmitter });
  registerOpsRoutes(app, {
    readiness: { ...deps.readiness, engine: deps.engine },
    metrics: deps.metrics,
    openApi: buildOpenApiDocument(),
    mayReadDetails: (request) => {
      try {
        authorize(deps.tokens, request, 'ops:read');
        return true;
      } catch {
        return false;
      }
    },
  });
  return app;
}

/** The methods each route path answers (HEAD with GET, as fastify serves it), by request path. */
function allowedMethods(routes: readonly RouteSpec[]): (path: string) => string[] {
  const byPattern = new Map<string, { re: RegExp; methods: Set<string> }>();
  for (const r of routes) {
    const entry = byPattern.get(r.path) ?? {
      re: new RegExp(`^${r.path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
      methods: new Set<string>(),
    };
    entry.methods.add(r.method);
    if (r.method === 'GET') entry.methods.add('HEAD');
    byPattern.set(r.path, entry);
  }
  return (path) => {
    for (const { re, methods } of byPattern.values()) if (re.test(path)) return [...methods];
    return [];
  };
}
