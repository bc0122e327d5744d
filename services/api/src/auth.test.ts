import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearerToken, findGrant } from './auth.ts';
import { ApiTokens } from './tokens.ts';

const grants = ApiTokens.parse(
  'one:token-one-0123456789abcdefghij:decisions:read,two:token-two-0123456789abcdefghij:signals:write',
);

test('findGrant matches exactly one configured token, whatever its position', () => {
  assert.equal(findGrant(grants, 'token-one-0123456789abcdefghij')?.name, 'one');
  assert.equal(findGrant(grants, 'token-two-0123456789abcdefghij')?.name, 'two');
  for (const wrong of [
    '',
    'token-one-0123456789abcdefghi',
    'token-one-0123456789abcdefghijk',
    'x'.repeat(4096),
  ]) {
    assert.equal(findGrant(grants, wrong), undefined, wrong.slice(0, 40));
  }
});

test('bearerToken reads RFC 6750 credentials only', () => {
  assert.equal(bearerToken('Bearer abc.def'), 'abc.def');
  assert.equal(bearerToken('bearer   abc'), 'abc');
  assert.equal(bearerToken('Bearer a/b+c=='), 'a/b+c==');
  for (const bad of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Bearerabc']) {
    assert.equal(bearerToken(bad), undefined, String(bad));
  }
});
