import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  createLocalJWKSet,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type CryptoKey as JoseKey,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { type SetErrorCode, SetRejection, SetVerifier, type VerifiedSet } from './verify.ts';

const ISS = 'https://idp.example.com';
const AUD = 'https://assurance.example.com/ssf';
const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/credential-compromise';

let key: { privateKey: JoseKey; publicKey: JoseKey };
let other: { privateKey: JoseKey; publicKey: JoseKey };
let jwk: JWK;
before(async () => {
  key = await generateKeyPair('RS256', { extractable: true });
  other = await generateKeyPair('RS256', { extractable: true });
  jwk = { ...(await exportJWK(key.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
});

const verifier = (overrides: Partial<ConstructorParameters<typeof SetVerifier>[0]> = {}) =>
  new SetVerifier({
    issuer: ISS,
    audience: AUD,
    algorithms: ['RS256'],
    keys: createLocalJWKSet({ keys: [jwk] }),
    clock: () => NOW,
    ...overrides,
  });

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A SET as a transmitter would sign it, with `claims` and `header` on top of a valid one. */
async function sign(
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  signer: JoseKey = key.privateKey,
): Promise<string> {
  const payload: JWTPayload = {
    iss: ISS,
    aud: AUD,
    jti: 'jti-1',
    iat: Math.floor(NOW / 1000) - 10,
    sub_id: { format: 'phone_number', phone_number: '+4915112345678' },
    events: { [RISC]: { credential_type: 'phone-sms' } },
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'secevent+jwt', kid: 'k1', ...header } as { alg: string })
    .sign(signer);
}

async function rejection(token: string, v = verifier()): Promise<SetRejection> {
  try {
    await v.verify(token);
  } catch (err) {
    if (err instanceof SetRejection) return err;
    throw err;
  }
  assert.fail('the SET was accepted');
}

describe('a valid SET', () => {
  test('is verified, with its one event, subject and times', async () => {
    const set: VerifiedSet = await verifier().verify(await sign({ txn: '42' }));
    assert.equal(set.jti, 'jti-1');
    assert.equal(set.iss, ISS);
    assert.equal(set.txn, '42');
    assert.equal(set.eventType, RISC);
    assert.deepEqual(set.event, { credential_type: 'phone-sms' });
    assert.deepEqual(set.subject, { format: 'phone_number', phone_number: '+4915112345678' });
    assert.equal(set.issuedAt, (Math.floor(NOW / 1000) - 10) * 1000);
  });

  test('a RISC-style subject inside the event is read when there is no sub_id', async () => {
    const set = await verifier().verify(
      await sign({
        sub_id: undefined,
        events: { [RISC]: { subject: { subject_type: 'email', email: 'a@example.com' } } },
      }),
    );
    assert.deepEqual(set.subject, { subject_type: 'email', email: 'a@example.com' });
  });

  test('aud may be a list that contains us; typ may be written application/secevent+jwt', async () => {
    await verifier().verify(
      await sign({ aud: ['https://other.example', AUD] }, { typ: 'application/secevent+jwt' }),
    );
  });
});

describe('the receiver test plan’s invalid SETs', () => {
  const cases: Array<[string, () => Promise<string>, SetErrorCode, string]> = [
    [
      'a corrupted signature',
      async () => {
        const t = await sign();
        const [h, p, s] = t.split('.') as [string, string, string];
        const sig = Buffer.from(s, 'base64url');
        sig[10] = (sig[10] as number) ^ 0xff;
        return `${h}.${p}.${sig.toString('base64url')}`;
      },
      'invalid_key',
      'signature',
    ],
    [
      'signed by a key not in the JWKS, same kid',
      () => sign({}, {}, other.privateKey),
      'invalid_key',
      'signature',
    ],
    ['an unknown kid', () => sign({}, { kid: 'k-unknown' }), 'invalid_key', 'unknown_kid'],
    ['a wrong iss', () => sign({ iss: 'https://evil.example' }), 'invalid_issuer', 'issuer'],
    ['a wrong aud', () => sign({ aud: 'https://someone-else.example' }), 'invalid_audience', 'audience'],
    ['no aud', () => sign({ aud: undefined }), 'invalid_audience', 'audience'],
    ['typ JWT', () => sign({}, { typ: 'JWT' }), 'invalid_request', 'typ'],
    ['no typ', () => sign({}, { typ: undefined }), 'invalid_request', 'typ'],
    ['a sub claim', () => sign({ sub: 'user-1' }), 'invalid_request', 'forbidden_claim'],
    ['an exp claim', () => sign({ exp: Math.floor(NOW / 1000) + 600 }), 'invalid_request', 'forbidden_claim'],
    ['no jti', () => sign({ jti: undefined }), 'invalid_request', 'jti'],
    ['no iat', () => sign({ iat: undefined }), 'invalid_request', 'iat_missing'],
    [
      'an iat 8 days old',
      () => sign({ iat: Math.floor(NOW / 1000) - 8 * 86_400 }),
      'invalid_request',
      'iat_too_old',
    ],
    [
      'an iat an hour ahead',
      () => sign({ iat: Math.floor(NOW / 1000) + 3600 }),
      'invalid_request',
      'iat_in_future',
    ],
    [
      'two events',
      () =>
        sign({
          events: { [RISC]: {}, 'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {} },
        }),
      'invalid_request',
      'events',
    ],
    ['no events', () => sign({ events: {} }), 'invalid_request', 'events'],
    ['events as a list', () => sign({ events: [RISC] }), 'invalid_request', 'events'],
    ['not a JWS', async () => 'not.a.set', 'invalid_request', 'malformed'],
    [
      'encrypted-looking (five parts)',
      async () => `${(await sign()).split('.').slice(0, 2).join('.')}.x.y.z`,
      'invalid_request',
      'malformed',
    ],
  ];
  for (const [name, make, err, reason] of cases)
    test(`${name}: ${err} (${reason})`, async () => {
      const r = await rejection(await make());
      assert.equal(r.err, err, r.message);
      assert.equal(r.reason, reason, r.message);
    });
});

describe('algorithms', () => {
  test('alg none is never accepted, however the rest looks', async () => {
    const payload = {
      iss: ISS,
      aud: AUD,
      jti: 'j',
      iat: Math.floor(NOW / 1000),
      events: { [RISC]: {} },
    };
    const token = `${b64({ alg: 'none', typ: 'secevent+jwt', kid: 'k1' })}.${b64(payload)}.`;
    const r = await rejection(token);
    assert.equal(r.reason, 'alg_not_allowed');
  });

  test('HS256 signed with the public key as the secret (key confusion) is refused', async () => {
    for (const secret of [
      new TextEncoder().encode(await exportSPKI(key.publicKey)),
      new TextEncoder().encode(JSON.stringify(jwk)),
    ]) {
      const token = await new SignJWT({
        iss: ISS,
        aud: AUD,
        jti: 'j',
        iat: Math.floor(NOW / 1000),
        events: { [RISC]: {} },
      })
        .setProtectedHeader({ alg: 'HS256', typ: 'secevent+jwt', kid: 'k1' })
        .sign(secret);
      const r = await rejection(token);
      assert.equal(r.err, 'invalid_key');
      assert.equal(r.reason, 'alg_not_allowed');
    }
  });

  test('a transmitter configured with none or an HMAC algorithm is refused at start', () => {
    for (const algorithms of [['none'], ['HS256'], ['RS256', 'HS512'], []])
      assert.throws(() => verifier({ algorithms }), /asymmetric JWS algorithms/);
  });

  test('an algorithm outside the transmitter’s list is refused even with a valid signature', async () => {
    const ps = await generateKeyPair('PS256', { extractable: true });
    const psJwk = { ...(await exportJWK(ps.publicKey)), kid: 'p1', alg: 'PS256' };
    const v = verifier({ keys: createLocalJWKSet({ keys: [jwk, psJwk] }) });
    const r = await rejection(await sign({}, { alg: 'PS256', kid: 'p1' }, ps.privateKey), v);
    assert.equal(r.reason, 'alg_not_allowed');
  });
});

/**
 * The oracle: whether a SET built from these choices must be accepted, and if not, which check
 * refuses it first, written from the contract (RFC 8417, 8935, SSF 1.0) rather than from the code.
 */
interface Choice {
  readonly issOk: boolean;
  readonly audOk: boolean;
  readonly typOk: boolean;
  readonly kidKnown: boolean;
  readonly sigOk: boolean;
  readonly iatOffsetS: number;
  readonly withSub: boolean;
  readonly withExp: boolean;
  readonly events: number;
  readonly jti: string;
}
function expected(c: Choice): string {
  if (!c.typOk) return 'typ';
  if (!c.kidKnown) return 'unknown_kid';
  if (!c.sigOk) return 'signature';
  if (!c.issOk) return 'issuer';
  if (!c.audOk) return 'audience';
  if (c.withSub || c.withExp) return 'forbidden_claim';
  if (c.jti.length === 0 || c.jti.length > 256) return 'jti';
  if (-c.iatOffsetS * 1000 > 7 * 86_400_000) return 'iat_too_old';
  if (c.iatOffsetS * 1000 > 300_000) return 'iat_in_future';
  if (c.events !== 1) return 'events';
  return 'accepted';
}

test('property: the verifier accepts exactly the SETs the contract accepts, and names the first failure', async () => {
  const v = verifier();
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        issOk: fc.boolean(),
        audOk: fc.boolean(),
        typOk: fc.boolean(),
        kidKnown: fc.boolean(),
        sigOk: fc.boolean(),
        iatOffsetS: fc.oneof(
          fc.integer({ min: -8 * 86_400, max: 3600 }),
          fc.constantFrom(-7 * 86_400, 300, 301),
        ),
        withSub: fc.boolean(),
        withExp: fc.boolean(),
        events: fc.integer({ min: 0, max: 3 }),
        jti: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.constantFrom('', 'x'.repeat(257))),
      }),
      async (c) => {
        const events = Object.fromEntries(
          Array.from({ length: c.events }, (_, i) => [`${RISC}#${i}`, { credential_type: 'password' }]),
        );
        const token = await sign(
          {
            iss: c.issOk ? ISS : 'https://other.example',
            aud: c.audOk ? AUD : 'https://other.example',
            iat: Math.floor(NOW / 1000) + c.iatOffsetS,
            jti: c.jti === '' ? undefined : c.jti,
            ...(c.withSub ? { sub: 'u' } : {}),
            ...(c.withExp ? { exp: Math.floor(NOW / 1000) + 86_400 * 30 } : {}),
            events,
          },
          { typ: c.typOk ? 'secevent+jwt' : 'JWT', kid: c.kidKnown ? 'k1' : 'nope' },
          c.sigOk ? key.privateKey : other.privateKey,
        );
        const outcome = await v.verify(token).then(
          () => 'accepted',
          (err: unknown) => (err instanceof SetRejection ? err.reason : `threw ${String(err)}`),
        );
        const want = expected(c);
        // jose reads the time claims it knows (exp) before ours: an exp in the past or future is
        // still refused, by whichever check comes first, and never accepted.
        if (want === 'forbidden_claim' || (c.withExp && outcome === 'malformed'))
          assert.ok(['forbidden_claim', 'malformed'].includes(outcome), `${JSON.stringify(c)}: ${outcome}`);
        else assert.equal(outcome, want, JSON.stringify(c));
      },
    ),
    { numRuns: 300 },
  );
});

describe('key rotation through a real JWKS endpoint', () => {
  let keys: JWK[] = [];
  let fetches = 0;
  const server = createServer((_req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  let url: URL;
  before(async () => {
    keys = [jwk];
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`);
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('a SET signed with a new key is verified once the JWKS publishes it; made-up kids cannot make it fetch without bound', async () => {
    const cooldown = 300;
    const v = new SetVerifier({
      issuer: ISS,
      audience: AUD,
      algorithms: ['RS256'],
      keys: url,
      clock: () => NOW,
      keyRefreshCooldownMs: cooldown,
    });
    await v.verify(await sign());
    const next = await generateKeyPair('RS256', { extractable: true });
    keys = [jwk, { ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'RS256' }];
    // Right after a fetch the new kid is not refetched yet: "retry" (KeysUnavailable, a 503), never
    // a refusal; the transmitter's retry after the cooldown is verified.
    const rotated = await sign({}, { kid: 'k2' }, next.privateKey);
    let retries = 0;
    for (;;) {
      const outcome = await v.verify(rotated).then(
        () => 'verified',
        (err: unknown) => (err instanceof Error ? err.name : String(err)),
      );
      if (outcome === 'verified') break;
      assert.equal(outcome, 'KeysUnavailable');
      retries++;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(retries > 0, 'the first attempt came within the cooldown');
    // A flood of made-up kids: refused or told to retry, and at most one fetch per cooldown.
    const fetchesBefore = fetches;
    const floodStart = Date.now();
    const bogus = await sign({}, { kid: 'k-nope' });
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      const outcome = await v.verify(bogus).then(
        () => 'verified',
        (err: unknown) => (err instanceof SetRejection ? err.reason : err instanceof Error ? err.name : ''),
      );
      assert.ok(['unknown_kid', 'KeysUnavailable'].includes(outcome), outcome);
      if (outcome === 'unknown_kid') refused++;
      await new Promise((r) => setTimeout(r, 20));
    }
    const elapsed = Date.now() - floodStart;
    assert.ok(refused > 0, 'a kid absent from a fresh set is refused');
    const fetched = fetches - fetchesBefore;
    assert.ok(fetched <= Math.ceil(elapsed / cooldown) + 1, `${fetched} fetches in ${elapsed} ms`);
  });

  test('a JWKS that cannot be read is not the SET’s fault: KeysUnavailable, never a 400', async () => {
    const v = new SetVerifier({
      issuer: ISS,
      audience: AUD,
      algorithms: ['RS256'],
      keys: new URL('http://127.0.0.1:1/jwks'),
      clock: () => NOW,
    });
    await assert.rejects(v.verify(await sign()), { name: 'KeysUnavailable' });
  });
});
