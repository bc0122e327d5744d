import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiTokens, tokenDigest } from './tokens.ts';

const A = 'a'.repeat(24);
const B = 'Bb_-.~0123456789abcdefghij';

test('compact form: name:token:scope+scope, scopes containing colons', () => {
  const grants = ApiTokens.parse(`app:${A}:decisions:read, soc:${B}:decisions:read+signals:write`);
  assert.deepEqual(
    grants.map((g) => [g.name, [...g.scopes]]),
    [
      ['app', ['decisions:read']],
      ['soc', ['decisions:read', 'signals:write']],
    ],
  );
  assert.deepEqual(grants[0]?.digest, tokenDigest(A));
});

test('JSON form', () => {
  const grants = ApiTokens.parse(JSON.stringify([{ name: 'soc', token: B, scopes: ['signals:write'] }]));
  assert.equal(grants[0]?.name, 'soc');
  assert.ok(grants[0]?.scopes.has('signals:write'));
});

test('parsed grants keep digests only, never the token', () => {
  const grants = ApiTokens.parse(`app:${A}:decisions:read`);
  assert.ok(!JSON.stringify(grants).includes(A));
  assert.ok(!Object.values(grants[0] ?? {}).includes(A));
});

test('bad entries are refused with a message that never echoes the token', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /required/],
    [`app:short-token:decisions:read`, /at least 24/],
    [`app:${A}:decisions:write`, /Invalid option/],
    [`app:${A}:`, /Invalid option|at least one scope/],
    [`app${A}`, /expected name:token:scope/],
    [`app:${A}:decisions:read,app:${B}:signals:write`, /duplicate token name "app"/],
    [`one:${A}:decisions:read,two:${A}:signals:write`, /same token is configured twice/],
    [`app:${A}/x:decisions:read`, /only letters, digits/],
    ['[{"name":"x"', /not a JSON array/],
  ];
  for (const [value, message] of cases) {
    const r = ApiTokens.safeParse(value);
    assert.equal(r.success, false, value);
    const text = r.error?.issues.map((i) => i.message).join('\n') ?? '';
    assert.match(text, message, value);
    assert.ok(!text.includes(A) && !text.includes(B), `token echoed for ${value}`);
  }
});

test('tenants: after the scopes, `@tenant|tenant` in the compact form, `tenants` in JSON; none means every tenant', () => {
  const grants = ApiTokens.parse(`app:${A}:decisions:read@acme|globex, soc:${B}:signals:write`);
  assert.deepEqual([...(grants[0]?.tenants ?? [])], ['acme', 'globex']);
  assert.deepEqual([...(grants[0]?.scopes ?? [])], ['decisions:read']);
  assert.equal(grants[1]?.tenants, null);
  const json = ApiTokens.parse(
    JSON.stringify([{ name: 'soc', token: B, scopes: ['signals:write'], tenants: ['acme'] }]),
  );
  assert.deepEqual([...(json[0]?.tenants ?? [])], ['acme']);
  assert.throws(() => ApiTokens.parse(`app:${A}:decisions:read@`));
});
