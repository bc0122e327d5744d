/**
 * `@assurance/api`: the HTTP read path (requirements, verification, explain) and SOC signal intake.
 * `main.ts` runs it; `startApi` wires it for tests; `buildApp` is the fastify app without I/O.
 */
export type { AppDeps } from './app.ts';
export { buildApp } from './app.ts';
export type { ApiConfig } from './config.ts';
export { ApiConfigSchema, loadApiConfig } from './config.ts';
export type { ApiMetrics } from './metrics.ts';
export { createApiMetrics } from './metrics.ts';
export { buildOpenApiDocument, renderOpenApi } from './openapi.ts';
export { OPENAPI_FILE } from './openapi-file.ts';
export { PROBLEM_TYPES, Problem, type ProblemType, problemTypeUri } from './problem.ts';
export * from './schemas.ts';
export type { ApiRuntime, StartOptions } from './server.ts';
export { startApi } from './server.ts';
export type { Scope, TokenGrant } from './tokens.ts';
export { SCOPES } from './tokens.ts';
