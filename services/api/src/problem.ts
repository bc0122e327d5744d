import type { ErrorCode } from '@assurance/core';
import { AssuranceError } from '@assurance/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

/**
 * RFC 9457 problem details: every error this API answers is one of these, as
 * `application/problem+json`. `type` is a URN from a closed list, so clients can switch on it;
 * `instance` names the request (`urn:uuid:<request id>`, the id our logs carry).
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export const PROBLEM_TYPES = {
  validation_failed: { status: 400, title: 'Request does not match the schema' },
  invalid_json: { status: 400, title: 'Request body is not valid JSON' },
  unknown_action: { status: 400, title: 'The policy does not name this action' },
  unauthorized: { status: 401, title: 'Missing or invalid bearer token' },
  forbidden: { status: 403, title: 'Token lacks the required scope' },
  not_found: { status: 404, title: 'No such resource' },
  method_not_allowed: { status: 405, title: 'Method not allowed on this resource' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  internal: { status: 500, title: 'Internal error' },
  kafka_unavailable: { status: 503, title: 'Kafka did not acknowledge in time' },
  redis_unavailable: { status: 503, title: 'Redis is unavailable' },
  not_ready: { status: 503, title: 'Not ready' },
} as const;
export type ProblemType = keyof typeof PROBLEM_TYPES;

export function problemTypeUri(type: ProblemType): string {
  return `urn:assurance:problem:${type.replaceAll('_', '-')}`;
}

/** One schema violation: where (`body`, `params`, `query`), a JSON pointer into it, and why. */
export const ProblemIssue = z.object({
  location: z.enum(['body', 'params', 'query', 'headers']),
  pointer: z.string().describe('RFC 6901 JSON pointer into the location, e.g. /completed/authenticator'),
  detail: z.string(),
});
export type ProblemIssue = z.infer<typeof ProblemIssue>;

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string(),
    instance: z.string(),
    errors: z.array(ProblemIssue).optional(),
  })
  .catchall(z.unknown());
export type Problem = z.infer<typeof Problem>;

/** An HTTP problem raised by our own code; the error handler renders it. */
export class ApiProblem extends Error {
  readonly type: ProblemType;
  readonly status: number;
  readonly extensions: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    type: ProblemType,
    detail: string,
    opts: { cause?: unknown; extensions?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ApiProblem';
    this.type = type;
    this.status = PROBLEM_TYPES[type].status;
    this.extensions = { ...(opts.extensions ?? {}) };
    this.headers = { ...(opts.headers ?? {}) };
  }
}

/** The problem type for a project error code: infrastructure is 503, anything else our fault. */
export function problemTypeOf(code: ErrorCode): ProblemType {
  switch (code) {
    case 'kafka_unavailable':
    case 'kafka_rejected':
      return 'kafka_unavailable';
    case 'redis_unavailable':
    case 'store_lost':
      return 'redis_unavailable';
    case 'message_too_large':
      return 'payload_too_large';
    case 'validation_failed':
    case 'key_mismatch':
    case 'empty_message':
    case 'unknown_encoding':
    case 'invalid_avro':
    case 'unknown_schema_id':
    case 'invalid_utf8':
    case 'compression_invalid':
    case 'compression_too_large':
    case 'future_event':
      return 'validation_failed';
    case 'invalid_json':
      return 'invalid_json';
    case 'registry_unavailable':
    case 'stale_write':
    case 'config_invalid':
    case 'policy_invalid':
    case 'script_failed':
    case 'internal':
    case 'store_mismatch':
    case 'state_corrupt':
    case 'delivery_failed':
      return 'internal';
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

/** Fastify's own client errors, by code, to our problem types. */
const FASTIFY_CODES: Readonly<Record<string, ProblemType>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
};

export function instanceOf(request: FastifyRequest): string {
  return `urn:uuid:${request.id}`;
}

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  type: ProblemType,
  detail: string,
  extensions: Record<string, unknown> = {},
): FastifyReply {
  const { status, title } = PROBLEM_TYPES[type];
  const body: Problem = {
    type: problemTypeUri(type),
    title,
    status,
    detail,
    instance: instanceOf(request),
  };
  // Extensions follow the standard members and can never replace one of them.
  for (const [key, value] of Object.entries(extensions)) if (!(key in body)) body[key] = value;
  return reply.code(status).type(PROBLEM_CONTENT_TYPE).send(body);
}

function isFastifyError(err: unknown): err is FastifyError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

/** Every error and every unknown route becomes a problem; 5xx details never leak internals. */
/**
 * `allowedFor(path)`: the methods a path answers (empty for a path that is no resource). A known
 * path asked with another method is 405 with `Allow` (RFC 9110 §15.5.6), before anything else is
 * made of the request (an unknown method's missing content type, say).
 */
export function installProblemHandlers(
  app: FastifyInstance,
  allowedFor: (path: string) => readonly string[] = () => [],
): void {
  const notAllowed = (request: FastifyRequest, reply: FastifyReply) => {
    const allowed = allowedFor(request.url.split('?')[0] ?? '');
    if (allowed.length === 0 || allowed.includes(request.method)) return undefined;
    reply.header('allow', allowed.join(', '));
    return sendProblem(
      request,
      reply,
      'method_not_allowed',
      `${request.method} is not allowed here; allowed: ${allowed.join(', ')}`,
    );
  };
  app.setNotFoundHandler(
    (request, reply) =>
      notAllowed(request, reply) ??
      sendProblem(request, reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`),
  );
  app.setErrorHandler((err: unknown, request, reply) => {
    const refused = !(err instanceof ApiProblem) ? notAllowed(request, reply) : undefined;
    if (refused !== undefined) return refused;
    if (err instanceof ApiProblem) {
      if (err.status >= 500) request.log.warn({ err, type: err.type }, 'request failed');
      reply.headers(err.headers);
      return sendProblem(request, reply, err.type, err.message, { ...err.extensions });
    }
    if (err instanceof AssuranceError) {
      const type = problemTypeOf(err.code);
      request.log.error({ err, code: err.code }, 'request failed');
      return sendProblem(request, reply, type, PROBLEM_TYPES[type].title);
    }
    if (isFastifyError(err)) {
      const mapped = FASTIFY_CODES[err.code];
      if (mapped) return sendProblem(request, reply, mapped, err.message);
      const status = err.statusCode ?? 500;
      if (status >= 400 && status < 500) {
        return sendProblem(request, reply, status === 404 ? 'not_found' : 'validation_failed', err.message);
      }
    }
    request.log.error({ err }, 'unhandled error');
    return sendProblem(request, reply, 'internal', 'the request could not be completed; see the server log');
  });
}
