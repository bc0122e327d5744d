import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTVerifyGetKey,
  jwtVerify,
  type ProtectedHeaderParameters,
} from 'jose';

/**
 * Strict verification of a Security Event Token (RFC 8417) from one transmitter, as RFC 8935/8936
 * receivers and the SSF 1.0 interoperability profile require: a JWS (never `none`) with `typ`
 * `secevent+jwt`, an allowed algorithm, a key of the transmitter's JWKS found by `kid`, its issuer,
 * our audience, `jti` and a plausible `iat`, no `sub` and no `exp`, and exactly one event.
 *
 * Every refusal is a SetRejection carrying the RFC 8935 error code the transmitter is told and a
 * reason from a closed list (a metric label).
 */

/** RFC 8935 §2.4 error codes (and SSF's `invalid_state`). */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied'
  | 'invalid_state';

export const REJECTION_REASONS = [
  'too_large',
  'malformed',
  'typ',
  'alg_not_allowed',
  'unknown_kid',
  'signature',
  'issuer',
  'audience',
  'iat_missing',
  'iat_too_old',
  'iat_in_future',
  'jti',
  'forbidden_claim',
  'events',
  'subject',
  'not_authenticated',
  'unknown_transmitter',
  'state',
] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

export class SetRejection extends Error {
  override readonly name = 'SetRejection';
  readonly err: SetErrorCode;
  readonly reason: RejectionReason;
  readonly description: string;
  constructor(err: SetErrorCode, reason: RejectionReason, description: string) {
    super(`${err}: ${description}`);
    this.err = err;
    this.reason = reason;
    this.description = description;
  }
}

/** The transmitter's keys could not be fetched: not the SET's fault; the transmitter should retry. */
export class KeysUnavailable extends Error {
  override readonly name = 'KeysUnavailable';
}

export interface VerifierOptions {
  /** The transmitter's issuer: every SET's `iss`. */
  readonly issuer: string;
  /** Our audience: must be in every SET's `aud`. */
  readonly audience: string;
  /** JWS algorithms accepted from this transmitter (`none` and HMAC never are). */
  readonly algorithms: readonly string[];
  /** Where its keys are, or a key resolver (tests, a static JWKS). */
  readonly keys: URL | JWTVerifyGetKey;
  /** How old a SET may be: held events of a paused stream arrive late (default 7 days). */
  readonly maxAgeMs?: number;
  /** The least time between two fetches of a remote JWKS on unknown kids (default 5 s). */
  readonly keyRefreshCooldownMs?: number;
  /** How far ahead of our clock `iat` may be (default 5 minutes). */
  readonly clockSkewMs?: number;
  readonly clock?: () => number;
}

export interface VerifiedSet {
  readonly jti: string;
  readonly iss: string;
  /** `iat` in ms since the epoch. */
  readonly issuedAt: number;
  readonly txn: string | undefined;
  /** The one event's type URI and payload. */
  readonly eventType: string;
  readonly event: Record<string, unknown>;
  /** `sub_id`, or the event's own `subject` (RISC before SSF), undefined if neither. */
  readonly subject: unknown;
}

/** Far beyond any real SET (a few KB): refused before any parsing. */
export const MAX_SET_BYTES = 64 * 1024;
const FORBIDDEN_ALGS = new Set(['none', 'HS256', 'HS384', 'HS512']);

export class SetVerifier {
  readonly #o: VerifierOptions;
  readonly #keys: JWTVerifyGetKey;
  readonly #algorithms: string[];

  constructor(options: VerifierOptions) {
    const bad = options.algorithms.filter((a) => FORBIDDEN_ALGS.has(a));
    if (bad.length > 0 || options.algorithms.length === 0)
      throw new Error(
        `a transmitter's algorithms must be asymmetric JWS algorithms; not ${bad.join(', ') || 'an empty list'}`,
      );
    this.#o = options;
    this.#algorithms = [...options.algorithms];
    // Refetched on an unknown kid (a key rotation) at most once per cooldown, so made-up kids
    // cannot make us hammer the transmitter, and every 10 minutes anyway.
    const remote =
      options.keys instanceof URL
        ? createRemoteJWKSet(options.keys, {
            cooldownDuration: options.keyRefreshCooldownMs ?? 5_000,
            cacheMaxAge: 600_000,
            timeoutDuration: 5_000,
          })
        : undefined;
    const keys = remote ?? (options.keys as JWTVerifyGetKey);
    // A key set that cannot be read (network, HTTP status, not a JWKS) is our problem to retry, never
    // the SET's: a 400 would tell the transmitter to drop a valid event.
    this.#keys = async (header, token) => {
      const couldRefresh = remote !== undefined && !remote.coolingDown;
      try {
        return await keys(header, token);
      } catch (err) {
        // An unknown kid while the set may not be refetched yet may be a key published since: the
        // transmitter is told to retry (503), and is refused only once a fresh set lacks it too.
        if (err instanceof errors.JWKSNoMatchingKey && remote !== undefined && !couldRefresh)
          throw new KeysUnavailable('the SET names a key not seen yet; the key set is refetched shortly');
        if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
          throw err;
        throw new KeysUnavailable(
          `the transmitter's keys could not be read: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    };
  }

  async verify(token: string): Promise<VerifiedSet> {
    if (Buffer.byteLength(token) > MAX_SET_BYTES)
      throw new SetRejection('invalid_request', 'too_large', `the SET is over ${MAX_SET_BYTES} bytes`);
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new SetRejection('invalid_request', 'malformed', 'not a compact JWS');
    }
    if (token.split('.').length !== 3)
      throw new SetRejection('invalid_request', 'malformed', 'a SET must be a signed JWT (compact JWS)');
    const typ = String(header.typ ?? '')
      .toLowerCase()
      .replace(/^application\//, '');
    if (typ !== 'secevent+jwt')
      throw new SetRejection('invalid_request', 'typ', 'the JOSE header "typ" must be "secevent+jwt"');
    if (typeof header.alg !== 'string' || !this.#algorithms.includes(header.alg))
      throw new SetRejection(
        header.alg === 'none' ? 'invalid_request' : 'invalid_key',
        'alg_not_allowed',
        `algorithm "${String(header.alg).slice(0, 20)}" is not accepted from this transmitter (${this.#algorithms.join(', ')})`,
      );
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        algorithms: this.#algorithms,
        issuer: this.#o.issuer,
        audience: this.#o.audience,
        typ: 'secevent+jwt',
        currentDate: new Date((this.#o.clock ?? Date.now)()),
      }));
    } catch (err) {
      throw this.#mapped(err);
    }
    return this.#checked(payload);
  }

  #mapped(err: unknown): Error {
    if (err instanceof errors.JWKSNoMatchingKey)
      return new SetRejection('invalid_key', 'unknown_kid', 'no key of the transmitter matches the SET');
    if (err instanceof errors.JWSSignatureVerificationFailed)
      return new SetRejection('invalid_key', 'signature', 'the signature does not verify');
    if (err instanceof KeysUnavailable) return err;
    if (err instanceof errors.JWKSMultipleMatchingKeys)
      return new SetRejection(
        'invalid_key',
        'unknown_kid',
        'several keys match the SET: it must name its "kid"',
      );
    // Any `exp` is refused (below); one in the past fails jose's own check first.
    if (err instanceof errors.JWTExpired)
      return new SetRejection('invalid_request', 'forbidden_claim', 'a SET must not carry "exp"');
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === 'iss')
        return new SetRejection('invalid_issuer', 'issuer', 'the SET is not from this issuer');
      if (err.claim === 'aud')
        return new SetRejection('invalid_audience', 'audience', 'the SET is not addressed to this receiver');
      if (err.claim === 'typ')
        return new SetRejection('invalid_request', 'typ', 'the JOSE header "typ" must be "secevent+jwt"');
      return new SetRejection('invalid_request', 'malformed', `claim "${err.claim}": ${err.reason}`);
    }
    if (err instanceof errors.JOSEAlgNotAllowed)
      return new SetRejection(
        'invalid_key',
        'alg_not_allowed',
        'the algorithm is not accepted from this transmitter',
      );
    if (err instanceof errors.JOSEError) return new SetRejection('invalid_request', 'malformed', err.code);
    return err instanceof Error ? err : new Error(String(err));
  }

  #checked(p: Record<string, unknown>): VerifiedSet {
    const now = (this.#o.clock ?? Date.now)();
    if ('sub' in p)
      throw new SetRejection(
        'invalid_request',
        'forbidden_claim',
        'a SET must not carry "sub" (use "sub_id")',
      );
    if ('exp' in p)
      throw new SetRejection('invalid_request', 'forbidden_claim', 'a SET must not carry "exp"');
    if (typeof p.jti !== 'string' || p.jti.length === 0 || p.jti.length > 256)
      throw new SetRejection('invalid_request', 'jti', '"jti" must be a string of 1 to 256 characters');
    if (typeof p.iat !== 'number' || !Number.isFinite(p.iat))
      throw new SetRejection('invalid_request', 'iat_missing', '"iat" is required');
    const issuedAt = p.iat * 1000;
    if (now - issuedAt > (this.#o.maxAgeMs ?? 7 * 86_400_000))
      throw new SetRejection('invalid_request', 'iat_too_old', '"iat" is older than this receiver accepts');
    if (issuedAt - now > (this.#o.clockSkewMs ?? 300_000))
      throw new SetRejection('invalid_request', 'iat_in_future', '"iat" lies in the future');
    const events = p.events;
    if (typeof events !== 'object' || events === null || Array.isArray(events))
      throw new SetRejection('invalid_request', 'events', '"events" must be a JSON object');
    const entries = Object.entries(events);
    if (entries.length !== 1)
      throw new SetRejection(
        'invalid_request',
        'events',
        `a SET must carry exactly one event, not ${entries.length}`,
      );
    const [eventType, event] = entries[0] as [string, unknown];
    if (typeof event !== 'object' || event === null || Array.isArray(event))
      throw new SetRejection('invalid_request', 'events', 'the event payload must be a JSON object');
    const payload = event as Record<string, unknown>;
    return {
      jti: p.jti,
      iss: String(p.iss),
      issuedAt,
      txn: typeof p.txn === 'string' ? p.txn : undefined,
      eventType,
      event: payload,
      subject: p.sub_id ?? payload.subject,
    };
  }
}
