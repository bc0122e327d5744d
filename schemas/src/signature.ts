import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';

/**
 * Signed decisions (docs/contract.md#signed-decisions). Each decision record carries, in the
 * `x-signature` header, a JWS (RFC 7515) in compact serialization with a detached payload:
 * `<protected>..<signature>`, where the payload is the record's value, byte for byte, the protected
 * header is `{"alg":"EdDSA","kid":…,"seq":…}` (`seq`: the decision's sequence, so that a reader
 * that cannot parse the value can still trust its sequence) and the signature is Ed25519 (RFC 8037) over
 * `<protected>.<base64url(value)>`. Any JOSE library verifies it by putting the base64url of the
 * value back between the dots.
 *
 * Signing and verifying here are synchronous (node:crypto), so a reader can check a record in the
 * same step as it parses it. Keys are JWKs: OKP, crv Ed25519, with a `kid`.
 */

export const SIGNATURE_HEADER = 'x-signature';

/** A public key that may have signed decisions (several during a rotation). */
export interface DecisionPublicJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
}

/** The private half, as `DECISION_SIGNING_KEY` holds it. */
export interface DecisionPrivateJwk extends DecisionPublicJwk {
  readonly d: string;
}

/** A key that cannot be used, said plainly (config validation shows the message). */
export class DecisionKeyError extends Error {
  override readonly name = 'DecisionKeyError';
}

const b64u = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url');

function checkJwk(jwk: unknown, needPrivate: boolean): DecisionPrivateJwk | DecisionPublicJwk {
  const k = jwk as Record<string, unknown> | null;
  if (k === null || typeof k !== 'object') throw new DecisionKeyError('a decision key must be a JWK object');
  if (k.kty !== 'OKP' || k.crv !== 'Ed25519')
    throw new DecisionKeyError('a decision key must be an Ed25519 JWK (kty "OKP", crv "Ed25519")');
  if (typeof k.kid !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(k.kid))
    throw new DecisionKeyError('a decision key needs a kid of 1 to 64 of A-Z, a-z, 0-9, ".", "_", "-"');
  if (typeof k.x !== 'string') throw new DecisionKeyError('a decision key needs its public part x');
  if (needPrivate && typeof k.d !== 'string')
    throw new DecisionKeyError('DECISION_SIGNING_KEY must hold the private part d');
  return k as unknown as DecisionPrivateJwk;
}

/** Signs decision records with one private key. */
export class DecisionSigner {
  readonly kid: string;
  /** The matching public key, to publish to readers. */
  readonly publicJwk: DecisionPublicJwk;
  readonly #key: KeyObject;

  constructor(jwk: DecisionPrivateJwk) {
    const k = checkJwk(jwk, true) as DecisionPrivateJwk;
    try {
      this.#key = createPrivateKey({ key: { ...k }, format: 'jwk' });
    } catch (err) {
      throw new DecisionKeyError(
        `DECISION_SIGNING_KEY is not a usable Ed25519 key: ${(err as Error).message}`,
      );
    }
    this.kid = k.kid;
    this.publicJwk = { kty: 'OKP', crv: 'Ed25519', x: k.x, kid: k.kid };
    // A private key whose x is not its own would sign what no reader can verify.
    const probe = this.sign('probe');
    if (!new DecisionVerifier([this.publicJwk]).verify(Buffer.from('probe'), probe).ok)
      throw new DecisionKeyError('DECISION_SIGNING_KEY: its x is not the public half of its d');
  }

  /** The `x-signature` header value for a record whose value is `value`, of sequence `seq`. */
  sign(value: string | Buffer, seq?: number): string {
    const claims = seq === undefined ? { alg: 'EdDSA', kid: this.kid } : { alg: 'EdDSA', kid: this.kid, seq };
    const header = b64u(JSON.stringify(claims));
    const input = `${header}.${b64u(value)}`;
    return `${header}..${sign(null, Buffer.from(input), this.#key).toString('base64url')}`;
  }
}

export type SignatureCheck =
  | { readonly ok: true; readonly kid: string; readonly seq: number | undefined }
  | { readonly ok: false; readonly reason: 'unsigned' | 'bad_signature' | 'unknown_key' };

/** Checks decision records against the public keys a reader trusts. */
export class DecisionVerifier {
  readonly #keys = new Map<string, KeyObject>();

  constructor(jwks: readonly DecisionPublicJwk[]) {
    if (jwks.length === 0) throw new DecisionKeyError('no decision public keys to verify with');
    for (const jwk of jwks) {
      const k = checkJwk(jwk, false);
      const { kty, crv, x, kid } = k;
      try {
        this.#keys.set(kid, createPublicKey({ key: { kty, crv, x }, format: 'jwk' }));
      } catch (err) {
        throw new DecisionKeyError(`decision public key ${kid} is not usable: ${(err as Error).message}`);
      }
    }
  }

  get kids(): string[] {
    return [...this.#keys.keys()];
  }

  verify(value: Buffer, header: string | undefined): SignatureCheck {
    if (header === undefined || header.length === 0) return { ok: false, reason: 'unsigned' };
    const parts = header.split('.');
    if (parts.length !== 3 || parts[1] !== '') return { ok: false, reason: 'bad_signature' };
    const [protectedB64 = '', , signature = ''] = parts;
    let kid: unknown;
    let seq: unknown;
    try {
      const h = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8')) as Record<
        string,
        unknown
      >;
      if (h.alg !== 'EdDSA' || Object.hasOwn(h, 'crit')) return { ok: false, reason: 'bad_signature' };
      kid = h.kid;
      seq = h.seq;
      if (seq !== undefined && !Number.isSafeInteger(seq)) return { ok: false, reason: 'bad_signature' };
    } catch {
      return { ok: false, reason: 'bad_signature' };
    }
    const key = typeof kid === 'string' ? this.#keys.get(kid) : undefined;
    if (key === undefined) return { ok: false, reason: 'unknown_key' };
    const input = Buffer.from(`${protectedB64}.${b64u(value)}`);
    let good = false;
    try {
      good = verify(null, input, key, Buffer.from(signature, 'base64url'));
    } catch {
      good = false;
    }
    return good
      ? { ok: true, kid: kid as string, seq: seq as number | undefined }
      : { ok: false, reason: 'bad_signature' };
  }
}

/** Parses `DECISION_SIGNING_KEY` (a private JWK as JSON). */
export function parseSigningKey(json: string): DecisionSigner {
  let jwk: unknown;
  try {
    jwk = JSON.parse(json);
  } catch {
    throw new DecisionKeyError('DECISION_SIGNING_KEY must be a JWK in JSON');
  }
  return new DecisionSigner(jwk as DecisionPrivateJwk);
}

/** Parses trusted public keys: a JWK, an array of JWKs, or a JWK set (`{"keys":[…]}`), as JSON. */
export function parsePublicKeys(json: string): DecisionPublicJwk[] {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new DecisionKeyError('decision public keys must be JSON: a JWK, an array of them, or {"keys":[…]}');
  }
  const list = Array.isArray(v)
    ? v
    : v && typeof v === 'object' && 'keys' in v
      ? (v as { keys: unknown }).keys
      : [v];
  if (!Array.isArray(list)) throw new DecisionKeyError('"keys" must be an array of JWKs');
  return list.map((k) => {
    const { kty, crv, x, kid } = checkJwk(k, false);
    return { kty, crv, x, kid };
  });
}

/** A new signing key, its kid derived from its public half (`npm run assurance -- keys generate`). */
export function generateSigningKey(): DecisionPrivateJwk {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }) as { x: string; d: string };
  const kid = `ed-${createHash('sha256').update(jwk.x).digest('base64url').slice(0, 12)}`;
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d, kid };
}
