import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ProblemIssue, ProblemType } from './problem.ts';
import { ApiProblem } from './problem.ts';
import type { Scope } from './tokens.ts';

/**
 * One route, described once: fastify mounts it from this, requests are parsed with its zod
 * schemas, and the OpenAPI document is generated from it (openapi.ts). A route cannot exist
 * without its documentation, nor the documentation without the route.
 */
export interface ResponseSpec {
  readonly description: string;
  /** Absent: the body is not JSON (e.g. Prometheus text), see `contentType`. */
  readonly schema?: z.ZodType;
  readonly contentType?: string;
}

export interface RouteSpec {
  readonly operationId: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** OpenAPI path template: `/v1/identities/{id}/assurance`. */
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  readonly tag: string;
  readonly scope?: Scope;
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  /** A body that is not JSON (a SET): handed to the handler as text, documented with this type. */
  readonly rawBody?: { readonly contentType: string; readonly description: string };
  /** Authenticated by the route itself instead of an API token scope (a transmitter's push token). */
  readonly auth?: 'transmitter';
  readonly responses: Readonly<Record<number, ResponseSpec>>;
  /** Problem types this route may answer besides those implied by scope, params and body. */
  readonly problems?: readonly ProblemType[];
}

/** Keeps the literal types of a spec, so handlers see the parsed shapes of its schemas. */
export function defineRoute<const S extends RouteSpec>(spec: S): S {
  return spec;
}

type Parsed<S, K extends string> = S extends { readonly [P in K]: infer T extends z.ZodType }
  ? z.output<T>
  : undefined;

export interface RouteInput<S extends RouteSpec> {
  readonly params: Parsed<S, 'params'>;
  readonly query: Parsed<S, 'query'>;
  readonly body: Parsed<S, 'body'>;
}

export type RouteHandler<S extends RouteSpec> = (
  input: RouteInput<S>,
  request: FastifyRequest,
  reply: FastifyReply,
) => Promise<unknown>;

/** `/v1/identities/{id}` → `/v1/identities/:id`. */
export function fastifyPath(openApiPath: string): string {
  return openApiPath.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
}

/** RFC 6901: `~` and `/` are escaped inside a segment. */
export function jsonPointer(path: ReadonlyArray<PropertyKey>): string {
  return path.map((key) => `/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** Parses one part of a request or throws a 400 problem listing every issue with its pointer. */
export function parsePart<S extends z.ZodType>(
  schema: S,
  value: unknown,
  location: ProblemIssue['location'],
): z.output<S> {
  const result = schema.safeParse(value ?? (location === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const errors: ProblemIssue[] = result.error.issues.map((issue) => ({
    location,
    pointer: jsonPointer(issue.path),
    detail: issue.message,
  }));
  const first = errors[0];
  const summary = first ? `${location}${first.pointer || ''}: ${first.detail}` : `invalid ${location}`;
  throw new ApiProblem(
    'validation_failed',
    errors.length > 1 ? `${summary} (and ${errors.length - 1} more)` : summary,
    {
      extensions: { errors },
    },
  );
}

/** Mounts a spec on fastify; parsing happens before the handler, with the spec's own schemas. */
export function mount<S extends RouteSpec>(app: FastifyInstance, spec: S, handler: RouteHandler<S>): void {
  app.route({
    method: spec.method,
    url: fastifyPath(spec.path),
    ...(spec.scope ? { config: { scope: spec.scope } } : {}),
    handler: async (request, reply) => {
      const input = {
        params: spec.params ? parsePart(spec.params, request.params, 'params') : undefined,
        query: spec.query ? parsePart(spec.query, request.query, 'query') : undefined,
        body: spec.body ? parsePart(spec.body, request.body, 'body') : undefined,
      } as RouteInput<S>;
      return handler(input, request, reply);
    },
  });
}
