import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flattenedVerify, importJWK } from 'jose';
import {
  DecisionKeyError,
  DecisionSigner,
  DecisionVerifier,
  generateSigningKey,
  parsePublicKeys,
  parseSigningKey,
} from './signature.ts';

const value = Buffer.from('{"identityId":"alice","sequence":7}');

describe('signed decisions', () => {
  const key = generateSigningKey();
  const signer = new DecisionSigner(key);
  const verifier = new DecisionVerifier([signer.publicJwk]);

  it('verifies what its key signed, and names the key', () => {
    assert.deepEqual(verifier.verify(value, signer.sign(value)), { ok: true, kid: key.kid, seq: undefined });
    // The sequence rides in the protected header, covered by the signature.
    assert.deepEqual(verifier.verify(value, signer.sign(value, 7)), { ok: true, kid: key.kid, seq: 7 });
    const [h = '', , sig = ''] = signer.sign(value, 7).split('.');
    const raised = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), seq: 2 ** 52 }),
    ).toString('base64url');
    assert.deepEqual(verifier.verify(value, `${raised}..${sig}`), { ok: false, reason: 'bad_signature' });
  });

  it('is a detached JWS any JOSE library verifies (jose, with the payload put back)', async () => {
    const [protectedHeader = '', , signature = ''] = signer.sign(value).split('.');
    const { d: _d, ...pub } = key;
    const result = await flattenedVerify(
      { protected: protectedHeader, payload: value.toString('base64url'), signature },
      await importJWK(pub, 'EdDSA'),
    );
    assert.deepEqual(Buffer.from(result.payload), value);
    assert.equal(result.protectedHeader?.kid, key.kid);
  });

  it('refuses a changed value, another key, a missing or mangled header', () => {
    const header = signer.sign(value);
    assert.deepEqual(verifier.verify(Buffer.from('{"identityId":"alice","sequence":8}'), header), {
      ok: false,
      reason: 'bad_signature',
    });
    const other = new DecisionSigner(generateSigningKey());
    assert.deepEqual(verifier.verify(value, other.sign(value)), { ok: false, reason: 'unknown_key' });
    // Another key claiming our kid.
    const impostor = new DecisionSigner({ ...generateSigningKey(), kid: key.kid });
    assert.deepEqual(verifier.verify(value, impostor.sign(value)), { ok: false, reason: 'bad_signature' });
    assert.deepEqual(verifier.verify(value, undefined), { ok: false, reason: 'unsigned' });
    for (const bad of ['x', 'a.b.c', `${header}x`, header.replace('..', '.e30.'), '..']) {
      const r = verifier.verify(value, bad);
      assert.equal(r.ok, false, bad);
    }
    // alg none, or anything but EdDSA, is never accepted.
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: key.kid })).toString('base64url')}..`;
    assert.deepEqual(verifier.verify(value, none), { ok: false, reason: 'bad_signature' });
  });

  it('trusts every key of a rotation', () => {
    const next = new DecisionSigner(generateSigningKey());
    const both = new DecisionVerifier(
      parsePublicKeys(JSON.stringify({ keys: [signer.publicJwk, next.publicJwk] })),
    );
    assert.equal(both.verify(value, signer.sign(value)).ok, true);
    assert.equal(both.verify(value, next.sign(value)).ok, true);
  });

  it('says plainly what is wrong with a key', () => {
    assert.throws(() => parseSigningKey('nope'), DecisionKeyError);
    assert.throws(() => parseSigningKey(JSON.stringify(signer.publicJwk)), /private part d/);
    assert.throws(() => parseSigningKey(JSON.stringify({ ...key, crv: 'P-256' })), /Ed25519/);
    assert.throws(() => parseSigningKey(JSON.stringify({ ...key, kid: '' })), /kid/);
    const mismatched = { ...key, x: generateSigningKey().x };
    assert.throws(() => parseSigningKey(JSON.stringify(mismatched)), DecisionKeyError);
    assert.throws(() => new DecisionVerifier([]), /no decision public keys/);
  });
});
