import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/**
 * A Shared Signals transmitter for tests, over real HTTP: it serves its discovery document
 * (`/.well-known/ssf-configuration`) and its JWKS, signs Security Event Tokens with jose (RS256,
 * `typ` secevent+jwt) and pushes them (RFC 8935). Keys can be rotated while it runs.
 */
export class TestTransmitter {
  readonly issuer: string;
  readonly pushToken = randomBytes(24).toString('base64url');
  #server: Server;
  #keys: Array<{ kid: string; privateKey: CryptoKey; jwk: JWK }> = [];

  private constructor(server: Server, issuer: string) {
    this.#server = server;
    this.issuer = issuer;
  }

  static async start(): Promise<TestTransmitter> {
    let self: TestTransmitter | undefined;
    const server = createServer((req, res) => {
      const t = self as TestTransmitter;
      res.setHeader('content-type', 'application/json');
      if (req.url === '/jwks') {
        res.end(JSON.stringify({ keys: t.#keys.map((k) => k.jwk) }));
      } else if (req.url === '/.well-known/ssf-configuration') {
        res.end(
          JSON.stringify({
            spec_version: '1_0',
            issuer: t.issuer,
            jwks_uri: `${t.issuer}/jwks`,
            delivery_methods_supported: ['urn:ietf:rfc:8935'],
          }),
        );
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    self = new TestTransmitter(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await self.rotate();
    return self;
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
