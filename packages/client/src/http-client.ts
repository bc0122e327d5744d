import type { Policy } from '@assurance/policy';
import {
  checkArguments,
  checkCompletion,
  failClosedAnswer,
  mergeVerdicts,
  verifyAgainst,
} from './answers.ts';
import { AssuranceClientError, type ClientErrorCode, type ProblemDetails } from './errors.ts';
import { RequirementResponse, VerifyResponse } from './http-schemas.ts';
import {
  baseUrlOf,
  boundedInt,
  checkToken,
  DEFAULTS,
  type HttpClientOptions,
  type TokenSource,
} from './options.ts';
import type {
  AssuranceClient,
  ClientHealth,
  CompletedStepUp,
  DegradedReason,
  RequirementAnswer,
  VerifyAnswer,
} from './types.ts';

/** The outcome of one API call: JSON to validate, or why there is none worth trusting. */
type CallResult =
  | { readonly ok: true; readonly body: unknown }
  | { readonly ok: false; readonly reason: DegradedReason };

const MINUTE_MS = 60_000;

/** Errors the contract maps to a thrown {@link AssuranceClientError} instead of a degraded answer. */
function thrownCodeFor(status: number): ClientErrorCode {
  switch (status) {
    case 400:
    case 422:
      return 'invalid_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
    case 405:
      return 'not_found';
    default:
      return 'unexpected_status';
  }
}

/** The problem type the API answers for an action its policy does not name. */
const UNKNOWN_ACTION_PROBLEM = 'urn:assurance:problem:unknown-action';

/** The `knownActions` extension of an unknown-action problem (strings only, bounded). */
function knownActionsOf(bytes: Buffer | undefined): string[] {
  try {
    const body = JSON.parse(bytes?.toString('utf8') ?? '') as { knownActions?: unknown };
    if (!Array.isArray(body.knownActions)) return [];
    return body.knownActions.filter((a): a is string => typeof a === 'string').slice(0, 1000);
  } catch {
    return [];
  }
}

function isJson(contentType: string | null): boolean {
  return contentType !== null && /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(contentType.trim());
}

/** The standard members of a problem+json body, when it is one. */
function problemOf(body: unknown): ProblemDetails | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v.slice(0, 500) : undefined);
  const problem: { -readonly [K in keyof ProblemDetails]: ProblemDetails[K] } = {};
  const type = text(b.type);
  const title = text(b.title);
  const detail = text(b.detail);
  const instance = text(b.instance);
  if (type !== undefined) problem.type = type;
  if (title !== undefined) problem.title = title;
  if (detail !== undefined) problem.detail = detail;
  if (instance !== undefined) problem.instance = instance;
  if (typeof b.status === 'number' && Number.isInteger(b.status)) problem.status = b.status;
  return Object.keys(problem).length > 0 ? problem : undefined;
}

/** Reads a body up to `max` bytes; undefined when it is larger (the rest is not downloaded). */
async function readCapped(response: Response, max: number): Promise<Buffer | undefined> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > max) {
    await response.body?.cancel().catch(() => {});
    return undefined;
  }
  if (response.body === null) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > max) {
      await response.body.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function isTimeout(error: unknown, signal: AbortSignal): boolean {
  return (
    signal.aborted ||
    (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
  );
}

/**
 * HTTP mode: one request per call to the assurance API, with a whole-request timeout.
 *
 * - 200 with a body that validates against the contract → the answer.
 * - No connection, timeout, 5xx, 429, or a 200 that is not what the contract says → the strictest
 *   requirement, `degraded: true` (fail closed; retrying is the caller's choice, not ours).
 * - 400/401/403/404/422 and other unexpected statuses (redirects included) → a thrown
 *   {@link AssuranceClientError}: a wrong token, scope or URL is not an outage, and an answer that
 *   held every action for every user would hide it behind "degraded" until someone noticed.
 */
export class HttpAssuranceClient implements AssuranceClient {
  readonly mode = 'http' as const;
  readonly baseUrl: string;
  readonly #token: TokenSource;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #policy: Policy;
  readonly #now: () => Date;
  #closed = false;

  constructor(options: HttpClientOptions, policy: Policy) {
    this.baseUrl = baseUrlOf(options.baseUrl);
    checkToken(options.token);
    this.#token = options.token;
    this.#timeoutMs = boundedInt('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs, MINUTE_MS);
    this.#maxBytes = boundedInt(
      'maxResponseBytes',
      options.maxResponseBytes,
      DEFAULTS.maxResponseBytes,
      16 * 1024 * 1024,
    );
    this.#policy = policy;
    this.#now = options.now ?? (() => new Date());
  }

  async #bearer(): Promise<string> {
    let token: string;
    try {
      token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    } catch (error) {
      throw new AssuranceClientError('unauthorized', 'the token source failed', { cause: error });
    }
    if (typeof token !== 'string' || token.trim().length === 0 || /[\r\n]/.test(token)) {
      throw new AssuranceClientError('unauthorized', 'the token source returned no usable token');
    }
    return token;
  }

  async #call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<CallResult> {
    const token = await this.#bearer();
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          accept: 'application/json, application/problem+json',
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        // Never follow a redirect: it would carry the token to wherever it points.
        redirect: 'manual',
        signal,
      });
    } catch (error) {
      return { ok: false, reason: isTimeout(error, signal) ? 'timeout' : 'unreachable' };
    }
    let bytes: Buffer | undefined;
    try {
      bytes = await readCapped(response, this.#maxBytes);
    } catch (error) {
      return { ok: false, reason: isTimeout(error, signal) ? 'timeout' : 'unreachable' };
    }
    const { status } = response;
    if (status >= 500) return { ok: false, reason: 'server_error' };
    if (status === 429) return { ok: false, reason: 'rate_limited' };
    if (status !== 200) {
      let problem: ProblemDetails | undefined;
      if (bytes !== undefined && isJson(response.headers.get('content-type'))) {
        try {
          problem = problemOf(JSON.parse(bytes.toString('utf8')));
        } catch {
          // An unreadable error body changes nothing: the status decides.
        }
      }
      const unknownAction = status === 400 && problem?.type === UNKNOWN_ACTION_PROBLEM;
      const code = unknownAction ? 'unknown_action' : thrownCodeFor(status);
      const what = unknownAction
        ? problem?.detail
        : (problem?.title ?? problem?.detail ?? response.statusText);
      throw new AssuranceClientError(code, `${method} ${path}: HTTP ${status}${what ? ` ${what}` : ''}`, {
        status,
        ...(problem === undefined ? {} : { problem }),
        ...(unknownAction ? { knownActions: knownActionsOf(bytes) } : {}),
      });
    }
    if (bytes === undefined || !isJson(response.headers.get('content-type'))) {
      return { ok: false, reason: 'bad_response' };
    }
    try {
      return { ok: true, body: JSON.parse(bytes.toString('utf8')) };
    } catch {
      return { ok: false, reason: 'bad_response' };
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new AssuranceClientError('client_closed', 'the assurance client is closed');
  }

  async requirementFor(identityId: string, action: string): Promise<RequirementAnswer> {
    this.#assertOpen();
    checkArguments(identityId, action);
    const path = `/v1/identities/${encodeURIComponent(identityId)}/assurance?action=${encodeURIComponent(action)}`;
    const result = await this.#call('GET', path);
    const now = this.#now();
    if (!result.ok) return failClosedAnswer(this.#policy, 'http', identityId, action, [result.reason], now);
    const parsed = RequirementResponse.safeParse(result.body);
    // An answer about someone or something else is as bad as no answer.
    if (!parsed.success || parsed.data.identityId !== identityId || parsed.data.action !== action) {
      return failClosedAnswer(this.#policy, 'http', identityId, action, ['bad_response'], now);
    }
    const r = parsed.data;
    return answerFrom(r, identityId, action, {
      riskLevel: r.riskLevel ?? null,
      validUntil: r.validUntil ?? null,
      policyDigest: r.policyDigest ?? null,
    });
  }

  async verify(identityId: string, action: string, completed: CompletedStepUp): Promise<VerifyAnswer> {
    this.#assertOpen();
    checkArguments(identityId, action);
    const done = checkCompletion(completed);
    const result = await this.#call('POST', '/v1/assurance/verify', { identityId, action, completed: done });
    const now = this.#now();
    const failed = (reason: DegradedReason) =>
      verifyAgainst(failClosedAnswer(this.#policy, 'http', identityId, action, [reason], now), done, now);
    if (!result.ok) return failed(result.reason);
    const parsed = VerifyResponse.safeParse(result.body);
    if (
      !parsed.success ||
      parsed.data.action !== action ||
      (parsed.data.identityId !== undefined && parsed.data.identityId !== identityId)
    ) {
      return failed('bad_response');
    }
    const r = parsed.data;
    const answer = answerFrom(r, identityId, action, {
      riskLevel: null,
      validUntil: null,
      policyDigest: null,
    });
    return mergeVerdicts(answer, r, done, now);
  }

  async ready(): Promise<void> {
    this.#assertOpen();
  }

  health(): ClientHealth {
    return {
      mode: 'http',
      ready: !this.#closed,
      stalenessMs: null,
      degraded: this.#closed,
      identities: null,
      rejected: {},
      unverified: null,
      closed: this.#closed,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/** The client's answer from the API's: an upstream "degraded" without reasons still says why. */
function answerFrom(
  r: {
    tier: RequirementAnswer['tier'];
    requirement: RequirementAnswer['requirement'];
    degraded: boolean;
    degradedReasons: readonly string[];
    sequence: number;
  },
  identityId: string,
  action: string,
  extra: Pick<RequirementAnswer, 'riskLevel' | 'validUntil' | 'policyDigest'>,
): RequirementAnswer {
  return {
    identityId,
    action,
    tier: r.tier,
    requirement: r.requirement,
    degraded: r.degraded,
    degradedReasons: r.degraded
      ? r.degradedReasons.length > 0
        ? [...r.degradedReasons]
        : ['upstream_degraded']
      : [],
    sequence: r.sequence,
    source: 'http',
    ...extra,
  };
}
