/**
 * Errors the client throws. It throws only for problems that retrying or failing closed cannot fix
 * (a wrong token, a wrong base URL, invalid arguments, a closed client): those are configuration or
 * programming errors and must surface at once. Everything transient (network, timeouts, 5xx,
 * garbage answers, a stale or unready view) is answered instead, with the strictest requirement and
 * `degraded: true` (see `failClosedAnswer` in `answers.ts`).
 */

/** Every code an {@link AssuranceClientError} can carry (closed list). */
export const CLIENT_ERROR_CODES = [
  /** `createAssuranceClient` was given options it cannot work with. */
  'invalid_options',
  /** The call's own arguments are invalid (empty identity id, oversized action…), or the API said 400/422. */
  'invalid_request',
  /** HTTP 401: the bearer token is missing, expired or wrong. */
  'unauthorized',
  /** HTTP 403: the token lacks the scope to read assurance. */
  'forbidden',
  /** HTTP 404 or 405: the base URL does not point at the assurance API. */
  'not_found',
  /** Any other 3xx/4xx the contract does not define (redirects are never followed: they would carry the token). */
  'unexpected_status',
  /** The topic view could not start (brokers unreachable, topic missing) or did not catch up in time. */
  'bootstrap_failed',
  /** The client was closed; a closed client answers nothing. */
  'client_closed',
] as const;

/** One {@link CLIENT_ERROR_CODES} entry. */
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/** An RFC 9457 problem document as the API returned it (only the standard members are kept). */
export interface ProblemDetails {
  readonly type?: string;
  readonly title?: string;
  readonly status?: number;
  readonly detail?: string;
  readonly instance?: string;
}

/** Options of {@link AssuranceClientError}. */
export interface AssuranceClientErrorOptions {
  readonly cause?: unknown;
  /** HTTP status, when the error came from an API answer. */
  readonly status?: number;
  /** The problem+json body of that answer, when it had one. */
  readonly problem?: ProblemDetails;
}

/**
 * The one error type the client throws, with a code from {@link CLIENT_ERROR_CODES}. None of these
 * is retriable as is: `retriable` is true only for `bootstrap_failed`, where starting again later
 * may work.
 */
export class AssuranceClientError extends Error {
  readonly code: ClientErrorCode;
  readonly retriable: boolean;
  readonly status: number | undefined;
  readonly problem: ProblemDetails | undefined;

  constructor(code: ClientErrorCode, message: string, options: AssuranceClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AssuranceClientError';
    this.code = code;
    this.retriable = code === 'bootstrap_failed';
    this.status = options.status;
    this.problem = options.problem;
  }
}

/** True for an {@link AssuranceClientError} (also across duplicated module instances). */
export function isAssuranceClientError(error: unknown): error is AssuranceClientError {
  return (
    error instanceof AssuranceClientError ||
    (error instanceof Error &&
      error.name === 'AssuranceClientError' &&
      (CLIENT_ERROR_CODES as readonly unknown[]).includes((error as { code?: unknown }).code))
  );
}
