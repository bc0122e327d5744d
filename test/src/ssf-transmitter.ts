import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { REPO_ROOT } from '@assurance/stack';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/** RISC event types are this prefix and a name (written out here, not taken from packages/ssf). */
export const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
/** The audience the SSF tests' receiving API is configured with. */
export const AUDIENCE = 'https://assurance.test/ssf';
/** The SSF tests' API token. */
export const API_TOKEN = 'ssf-test-token-0123456789abcdef';

interface Stream {
  stream_id: string;
  aud: string;
  events_requested: string[];
  events_delivered: string[];
  delivery: { method: string; endpoint_url?: string };
  description?: string;
  status: 'enabled' | 'paused' | 'disabled';
  reason?: string;
  subjects: Array<Record<string, unknown>>;
}

/**
 * A Shared Signals transmitter for tests, over real HTTP, written from SSF 1.0, RFC 8935 and RFC
 * 8936: its discovery document (`/.well-known/ssf-configuration`), its JWKS, stream management
 * (configuration, status, subjects, verification) behind a bearer token, a poll endpoint with
 * acknowledgements and `setErrs`, and SETs signed with jose (RS256, `typ` secevent+jwt) that it
 * pushes or queues for polling. Keys can be rotated while it runs. One stream, as SSF allows.
 */
export class TestTransmitter {
  readonly issuer: string;
  readonly pushToken = randomBytes(24).toString('base64url');
  readonly managementToken = randomBytes(24).toString('base64url');
  readonly pollToken = randomBytes(24).toString('base64url');
  /** What the receiver answered through polls. */
  readonly acked = new Set<string>();
  readonly setErrs = new Map<string, { err: string; description: string }>();
  stream: Stream | undefined;
  /** How soon after one verification request another is accepted (else 429). */
  minVerificationIntervalS = 0;
  #lastVerification = 0;
  #queue: Array<{ jti: string; token: string }> = [];
  #server: Server;
  #keys: Array<{ kid: string; privateKey: CryptoKey; jwk: JWK }> = [];

  private constructor(server: Server, issuer: string) {
    this.#server = server;
    this.issuer = issuer;
  }

  static async start(): Promise<TestTransmitter> {
    let self: TestTransmitter | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const t = self as TestTransmitter;
        void t
          .#handle(
            req.method ?? 'GET',
            new URL(req.url ?? '/', t.issuer),
            req.headers.authorization,
            Buffer.concat(chunks).toString(),
          )
          .then(([status, body]) => {
            res.statusCode = status;
            if (body === undefined) res.end();
            else {
              res.setHeader('content-type', 'application/json');
              res.end(JSON.stringify(body));
            }
          })
          .catch((err: unknown) => {
            res.statusCode = 500;
            res.end(String(err));
          });
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    self = new TestTransmitter(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await self.rotate();
    return self;
  }

  async #handle(
    method: string,
    url: URL,
    authorization: string | undefined,
    text: string,
  ): Promise<[number, unknown]> {
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    const path = url.pathname;
    if (path === '/jwks') return [200, { keys: this.#keys.map((k) => k.jwk) }];
    if (path === '/.well-known/ssf-configuration')
      return [
        200,
        {
          spec_version: '1_0',
          issuer: this.issuer,
          jwks_uri: `${this.issuer}/jwks`,
          delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
          configuration_endpoint: `${this.issuer}/ssf/stream`,
          status_endpoint: `${this.issuer}/ssf/status`,
          add_subject_endpoint: `${this.issuer}/ssf/subjects:add`,
          remove_subject_endpoint: `${this.issuer}/ssf/subjects:remove`,
          verification_endpoint: `${this.issuer}/ssf/verify`,
          authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
          default_subjects: 'NONE',
        },
      ];
    if (path === '/ssf/poll') {
      if (authorization !== `Bearer ${this.pollToken}`) return [401, { err: 'authentication_failed' }];
      for (const jti of (body.ack as string[] | undefined) ?? []) this.acked.add(jti);
      for (const [jti, e] of Object.entries(
        (body.setErrs as Record<string, { err: string; description: string }>) ?? {},
      ))
        this.setErrs.set(jti, e);
      const open = this.#queue.filter((s) => !this.acked.has(s.jti) && !this.setErrs.has(s.jti));
      const max = Number(body.maxEvents ?? 100);
      return [
        200,
        {
          sets: Object.fromEntries(open.slice(0, max).map((s) => [s.jti, s.token])),
          moreAvailable: open.length > max,
        },
      ];
    }
    if (!path.startsWith('/ssf/')) return [404, {}];
    if (authorization !== `Bearer ${this.managementToken}`) return [401, {}];
    const id = url.searchParams.get('stream_id') ?? (body.stream_id as string | undefined);
    const mine = () => this.stream !== undefined && this.stream.stream_id === id;
    const view = (s: Stream) => {
      const { status: _s, reason: _r, subjects: _x, ...config } = s;
      return { ...config, iss: this.issuer, min_verification_interval: this.minVerificationIntervalS };
    };
    if (path === '/ssf/stream') {
      if (method === 'POST') {
        if (this.stream) return [409, {}];
        const requested = (body.events_requested as string[]) ?? [];
        this.stream = {
          stream_id: randomUUID(),
          aud: 'https://assurance.test/ssf',
          events_requested: requested,
          // It delivers what it supports of what was asked: here, RISC and CAEP types.
          events_delivered: requested.filter((e) => /\/(risc|caep)\//.test(e)),
          delivery: (body.delivery as Stream['delivery']) ?? { method: 'urn:ietf:rfc:8936' },
          ...(typeof body.description === 'string' ? { description: body.description } : {}),
          status: 'enabled',
          subjects: [],
        };
        return [201, view(this.stream)];
      }
      if (method === 'GET') {
        if (id === null || id === undefined) return [200, this.stream ? [view(this.stream)] : []];
        return mine() ? [200, view(this.stream as Stream)] : [404, {}];
      }
      if (method === 'PATCH') {
        if (!mine()) return [404, {}];
        const s = this.stream as Stream;
        if (Array.isArray(body.events_requested)) {
          s.events_requested = body.events_requested as string[];
          s.events_delivered = s.events_requested.filter((e) => /\/(risc|caep)\//.test(e));
        }
        if (body.delivery) s.delivery = body.delivery as Stream['delivery'];
        if (typeof body.description === 'string') s.description = body.description;
        return [200, view(s)];
      }
      if (method === 'DELETE') {
        if (!mine()) return [404, {}];
        this.stream = undefined;
        return [204, undefined];
      }
    }
    if (!mine()) return [404, {}];
    const s = this.stream as Stream;
    if (path === '/ssf/status') {
      if (method === 'POST') {
        s.status = body.status as Stream['status'];
        if (typeof body.reason === 'string') s.reason = body.reason;
      }
      return [200, { stream_id: s.stream_id, status: s.status, ...(s.reason ? { reason: s.reason } : {}) }];
    }
    if (path === '/ssf/subjects:add') {
      s.subjects.push(body.subject as Record<string, unknown>);
      return [200, undefined];
    }
    if (path === '/ssf/subjects:remove') {
      const key = JSON.stringify(body.subject);
      s.subjects = s.subjects.filter((x) => JSON.stringify(x) !== key);
      return [204, undefined];
    }
    if (path === '/ssf/verify') {
      const now = Date.now();
      if (now - this.#lastVerification < this.minVerificationIntervalS * 1000) return [429, {}];
      this.#lastVerification = now;
      const state = body.state as string | undefined;
      const set = await this.set(
        s.aud,
        'https://schemas.openid.net/secevent/ssf/event-type/verification',
        state ? { state } : {},
        {
          format: 'opaque',
          id: s.stream_id,
        },
      );
      this.enqueue(set);
      return [204, undefined];
    }
    return [404, {}];
  }

  /** Queues a SET for the poll endpoint. */
  enqueue(set: { jti: string; token: string }): void {
    this.#queue.push(set);
  }

  get pollEndpoint(): string {
    return `${this.issuer}/ssf/poll`;
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  /** The current signing key's kid. */
  get kid(): string {
    return (this.#keys.at(-1) as { kid: string }).kid;
  }

  /** Publishes a new key (kept beside the old ones) and signs with it from now on. */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = `k-${randomUUID()}`;
    this.#keys.push({
      kid,
      privateKey,
      jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
    });
    return kid;
  }

  /**
   * A SET of `eventType` about `subject`, for `audience`; `claims` and `header` override the valid
   * defaults (a test makes it invalid on purpose).
   */
  async set(
    audience: string,
    eventType: string,
    event: Record<string, unknown>,
    subject: Record<string, unknown>,
    opts: { claims?: Record<string, unknown>; header?: Record<string, unknown>; key?: CryptoKey } = {},
  ): Promise<{ jti: string; token: string }> {
    const jti = randomUUID();
    const signer = this.#keys.at(-1) as { kid: string; privateKey: CryptoKey };
    const token = await new SignJWT({
      iss: this.issuer,
      aud: audience,
      jti,
      iat: Math.floor(Date.now() / 1000),
      sub_id: subject,
      events: { [eventType]: event },
      ...opts.claims,
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'secevent+jwt', kid: signer.kid, ...opts.header } as {
        alg: string;
      })
      .sign(opts.key ?? signer.privateKey);
    return { jti, token };
  }

  /** RFC 8935 push to a receiver's endpoint; the receiver's status and JSON body (if any). */
  async push(
    url: string,
    token: string,
    opts: { bearer?: string | null; contentType?: string } = {},
  ): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
    const bearer = opts.bearer === undefined ? this.pushToken : opts.bearer;
    const r = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': opts.contentType ?? 'application/secevent+jwt',
        ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
      },
      body: token,
    });
    const text = await r.text();
    let body: Record<string, unknown> | undefined;
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    } catch {
      body = undefined;
    }
    return { status: r.status, body };
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

/** `npm run assurance -- ssf <args>` as a user runs it, with `transmittersFile` as SSF_TRANSMITTERS_FILE. */
export async function ssfCli(
  transmittersFile: string,
  args: readonly string[],
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts/assurance.ts'), 'ssf', ...args], {
    env: { ...process.env, SSF_TRANSMITTERS_FILE: transmittersFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out, err };
}

/** An API's `assurance_ssf_sets_total` for one outcome (summed over transmitters; 0 when absent). */
export async function ssfSets(apiBase: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${apiBase}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('assurance_ssf_sets_total{') && l.includes(`outcome="${outcome}"`))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}
