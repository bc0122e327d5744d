import { z } from 'zod';

/**
 * The receiver's side of SSF 1.0 stream management: a transmitter found through its
 * `/.well-known/ssf-configuration`, and its stream for us created, read, updated, deleted, paused
 * and resumed, its subjects added and removed, and verification requested. Plain HTTP with a
 * bearer token; every answer is validated, and every failure is a StreamApiError naming the
 * endpoint and the status.
 */

/** Delivery method URNs (SSF 1.0 §6.1.1). */
export const DELIVERY_PUSH = 'urn:ietf:rfc:8935';
export const DELIVERY_POLL = 'urn:ietf:rfc:8936';

export const TransmitterConfiguration = z.looseObject({
  spec_version: z.string().optional(),
  issuer: z.string(),
  jwks_uri: z.string(),
  delivery_methods_supported: z.array(z.string()).optional(),
  configuration_endpoint: z.string().optional(),
  status_endpoint: z.string().optional(),
  add_subject_endpoint: z.string().optional(),
  remove_subject_endpoint: z.string().optional(),
  verification_endpoint: z.string().optional(),
  critical_subject_members: z.array(z.string()).optional(),
  authorization_schemes: z.array(z.looseObject({ spec_urn: z.string() })).optional(),
  default_subjects: z.enum(['ALL', 'NONE']).optional(),
});
export type TransmitterConfiguration = z.infer<typeof TransmitterConfiguration>;

export const StreamConfiguration = z.looseObject({
  stream_id: z.string(),
  iss: z.string().optional(),
  aud: z.union([z.string(), z.array(z.string())]).optional(),
  events_supported: z.array(z.string()).optional(),
  events_requested: z.array(z.string()).optional(),
  events_delivered: z.array(z.string()).optional(),
  delivery: z
    .looseObject({
      method: z.string(),
      endpoint_url: z.string().optional(),
      authorization_header: z.string().optional(),
    })
    .optional(),
  min_verification_interval: z.number().optional(),
  description: z.string().optional(),
});
export type StreamConfiguration = z.infer<typeof StreamConfiguration>;

export const StreamStatus = z.looseObject({
  stream_id: z.string().optional(),
  status: z.enum(['enabled', 'paused', 'disabled']),
  reason: z.string().optional(),
});
export type StreamStatus = z.infer<typeof StreamStatus>;

export class StreamApiError extends Error {
  override readonly name = 'StreamApiError';
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** Where the discovery document of `issuer` is (SSF 1.0 §7.2: a path goes after the well-known part). */
export function discoveryUrl(issuer: string): URL {
  const u = new URL(issuer);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  return new URL(`/.well-known/ssf-configuration${path}`, u.origin);
}

export interface StreamClientOptions {
  /** The transmitter's issuer, as configured (the discovery document must say the same). */
  readonly issuer: string;
  /** The bearer token its management API takes (its `authorization_schemes`). */
  readonly token: string;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export class StreamClient {
  readonly #o: StreamClientOptions;
  #config: TransmitterConfiguration | undefined;

  constructor(options: StreamClientOptions) {
    this.#o = options;
  }

  /** Reads (once) and checks the transmitter's discovery document. */
  async configuration(): Promise<TransmitterConfiguration> {
    if (this.#config) return this.#config;
    const url = discoveryUrl(this.#o.issuer);
    const body = await this.#call('GET', url, undefined, [200], false);
    const parsed = TransmitterConfiguration.safeParse(body);
    if (!parsed.success)
      throw new StreamApiError(`${url}: not an SSF configuration: ${parsed.error.message}`);
    // A document that names another issuer could redirect our trust: SSF requires they match.
    if (parsed.data.issuer !== this.#o.issuer)
      throw new StreamApiError(
        `${url} names issuer ${parsed.data.issuer}, not the configured ${this.#o.issuer}`,
      );
    this.#config = parsed.data;
    return parsed.data;
  }

  /**
   * Creates our stream; when the transmitter already has one for us (409), reads it and updates it
   * to what we ask. Returns the stream as the transmitter configured it: trust `events_delivered`.
   */
  async createStream(request: {
    events_requested: readonly string[];
    delivery: { method: string; endpoint_url?: string; authorization_header?: string };
    description?: string;
  }): Promise<StreamConfiguration> {
    const endpoint = await this.#endpoint('configuration_endpoint');
    const r = await this.#call('POST', endpoint, request, [201, 409]);
    if (r !== CONFLICT) return StreamConfiguration.parse(r);
    const existing = await this.getStream();
    const list = Array.isArray(existing) ? existing : [existing];
    const first = list[0];
    if (!first) throw new StreamApiError(`${endpoint}: 409 but no stream to read`);
    return this.updateStream({ stream_id: first.stream_id, ...request });
  }

  /** One stream by id, or every stream of ours when `streamId` is absent. */
  async getStream(streamId?: string): Promise<StreamConfiguration | StreamConfiguration[]> {
    const endpoint = await this.#endpoint('configuration_endpoint');
    if (streamId !== undefined) endpoint.searchParams.set('stream_id', streamId);
    const r = await this.#call('GET', endpoint, undefined, [200]);
    return Array.isArray(r) ? z.array(StreamConfiguration).parse(r) : StreamConfiguration.parse(r);
  }

  /** PATCH: changes only the members given. */
  async updateStream(patch: { stream_id: string } & Record<string, unknown>): Promise<StreamConfiguration> {
    return StreamConfiguration.parse(
      await this.#call('PATCH', await this.#endpoint('configuration_endpoint'), patch, [200]),
    );
  }

  async deleteStream(streamId: string): Promise<void> {
    const endpoint = await this.#endpoint('configuration_endpoint');
    endpoint.searchParams.set('stream_id', streamId);
    await this.#call('DELETE', endpoint, undefined, [204]);
  }

  async status(streamId: string): Promise<StreamStatus> {
    const endpoint = await this.#endpoint('status_endpoint');
    endpoint.searchParams.set('stream_id', streamId);
    return StreamStatus.parse(await this.#call('GET', endpoint, undefined, [200]));
  }

  async setStatus(streamId: string, status: StreamStatus['status'], reason?: string): Promise<StreamStatus> {
    const body = { stream_id: streamId, status, ...(reason ? { reason } : {}) };
    return StreamStatus.parse(await this.#call('POST', await this.#endpoint('status_endpoint'), body, [200]));
  }

  async addSubject(streamId: string, subject: Record<string, unknown>, verified = true): Promise<void> {
    await this.#call(
      'POST',
      await this.#endpoint('add_subject_endpoint'),
      { stream_id: streamId, subject, verified },
      [200, 204],
    );
  }

  async removeSubject(streamId: string, subject: Record<string, unknown>): Promise<void> {
    await this.#call(
      'POST',
      await this.#endpoint('remove_subject_endpoint'),
      { stream_id: streamId, subject },
      [200, 204],
    );
  }

  /** Asks for a verification event carrying `state`; 429 (too soon) is an error with that status. */
  async requestVerification(streamId: string, state: string): Promise<void> {
    await this.#call(
      'POST',
      await this.#endpoint('verification_endpoint'),
      { stream_id: streamId, state },
      [200, 204],
    );
  }

  async #endpoint(
    name:
      | 'configuration_endpoint'
      | 'status_endpoint'
      | 'add_subject_endpoint'
      | 'remove_subject_endpoint'
      | 'verification_endpoint',
  ): Promise<URL> {
    const value = (await this.configuration())[name];
    if (!value) throw new StreamApiError(`the transmitter ${this.#o.issuer} has no ${name}`);
    return new URL(value);
  }

  async #call(method: string, url: URL, body: unknown, ok: readonly number[], auth = true): Promise<unknown> {
    const doFetch = this.#o.fetch ?? fetch;
    let r: Response;
    try {
      r = await doFetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(auth ? { authorization: `Bearer ${this.#o.token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#o.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new StreamApiError(`${method} ${url}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = await r.text();
    if (r.status === 409 && ok.includes(409)) return CONFLICT;
    if (!ok.includes(r.status))
      throw new StreamApiError(`${method} ${url}: ${r.status} ${text.slice(0, 300)}`, r.status);
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new StreamApiError(`${method} ${url}: ${r.status} with a body that is not JSON`, r.status);
    }
  }
}

const CONFLICT = Symbol('conflict');
