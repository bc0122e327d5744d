import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Scope } from '@assurance/api';
import { assertDocumented, assertProblem, type OpenApiDocument } from '../api/contract.ts';
import { type CallOptions, type CallResult, startTestApi, type TestApi, TOKENS } from '../api/support.ts';
import { startPipeline } from '../src/pipeline.ts';
import { pollUntil } from '../src/wait.ts';

/**
 * The authorization matrix: for every protected route, no token and an unknown token are 401, a
 * valid token without the route's scope is 403, and a token with the scope gets its 2xx. Public
 * routes answer without a token.
 */

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: TestApi;
let doc: OpenApiDocument;

before(async () => {
  p = await startPipeline();
  api = await startTestApi(p.config);
  doc = (await api.call('GET', '/openapi.json', { token: null })).body as OpenApiDocument;
});
after(async () => {
  await api?.stop();
  await p?.stop();
});

interface ProtectedRoute {
  readonly method: 'GET' | 'POST';
  readonly template: string;
  readonly path: string;
  readonly scope: Scope;
  readonly ok: number;
  readonly json?: () => unknown;
}

const ROUTES: readonly ProtectedRoute[] = [
  {
    method: 'GET',
    template: '/v1/identities/{id}/assurance',
    path: '/v1/identities/auth-user/assurance?action=payout.change',
    scope: 'decisions:read',
    ok: 200,
  },
  {
    method: 'POST',
    template: '/v1/assurance/verify',
    path: '/v1/assurance/verify',
    scope: 'decisions:read',
    ok: 200,
    json: () => ({ identityId: 'auth-user', action: 'profile.view', completed: {} }),
  },
  {
    method: 'GET',
    template: '/v1/identities/{id}/signals',
    path: '/v1/identities/auth-user/signals',
    scope: 'signals:read',
    ok: 200,
  },
  {
    method: 'POST',
    template: '/v1/signals',
    path: '/v1/signals',
    scope: 'signals:write',
    ok: 202,
    // A clear of a signal that was never raised: accepted, changes nothing.
    json: () => ({
      signalId: `auth-${randomUUID()}`,
      op: 'clear',
      subject: { type: 'identity', value: 'auth-user' },
    }),
  },
];

/** The token holding only the other scope. */
const WRONG_SCOPE: Record<Scope, string> = {
  'decisions:read': TOKENS.writer,
  'signals:read': TOKENS.reader,
  'signals:write': TOKENS.reader,
  'signals:clear': TOKENS.writer,
  'ops:read': TOKENS.reader,
  'ssf:stream': TOKENS.reader,
  'policy:read': TOKENS.reader,
};
/** A token holding the scope (the POST route's clear also needs signals:clear). */
const RIGHT_SCOPE: Record<Scope, string> = {
  'decisions:read': TOKENS.reader,
  'signals:read': TOKENS.socReader,
  'signals:write': TOKENS.clearer,
  'signals:clear': TOKENS.clearer,
  'ops:read': TOKENS.ops,
  'ssf:stream': TOKENS.receiver,
  'policy:read': TOKENS.policyOwner,
};

function request(route: ProtectedRoute, opts: CallOptions): Promise<CallResult> {
  return api.call(route.method, route.path, { ...opts, ...(route.json ? { json: route.json() } : {}) });
}

for (const route of ROUTES) {
  describe(`${route.method} ${route.template} (${route.scope})`, () => {
    test('no token: 401 with a Bearer challenge', async () => {
      const res = await request(route, { token: null });
      assertDocumented(doc, route.method, route.template, res);
      assertProblem(res, 401, 'unauthorized');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="assurance"/);
    });

    test('unknown token and non-Bearer schemes: 401 invalid_token', async () => {
      const res = await request(route, { token: TOKENS.unknown });
      assertDocumented(doc, route.method, route.template, res);
      assertProblem(res, 401, 'unauthorized');
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      // A token that is a prefix of a real one, and the right token under another scheme.
      assertProblem(
        await request(route, { token: RIGHT_SCOPE[route.scope].slice(0, -1) }),
        401,
        'unauthorized',
      );
      assertProblem(
        await request(route, {
          token: null,
          headers: { authorization: `Basic ${RIGHT_SCOPE[route.scope]}` },
        }),
        401,
        'unauthorized',
      );
    });

    test('valid token without the scope: 403 insufficient_scope', async () => {
      const res = await request(route, { token: WRONG_SCOPE[route.scope] });
      assertDocumented(doc, route.method, route.template, res);
      const problem = assertProblem(res, 403, 'forbidden');
      assert.equal(problem.requiredScope, route.scope);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope", scope="[a-z:]+"/);
    });

    test(`token with the scope: ${route.ok}`, async () => {
      for (const token of [RIGHT_SCOPE[route.scope], TOKENS.both]) {
        const res = await request(route, { token });
        assertDocumented(doc, route.method, route.template, res);
        assert.equal(res.status, route.ok, res.text.slice(0, 300));
      }
    });
  });
}

test('authentication comes before the body is read: an anonymous oversized body is 401, not 413', async () => {
  const res = await api.call('POST', '/v1/signals', { token: null, json: { pad: 'x'.repeat(64 * 1024) } });
  assertProblem(res, 401, 'unauthorized');
});

test('public routes answer without a token', async () => {
  for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
    // Readiness legitimately lags a moment behind start (the first engine sample) and a loaded
    // machine: wait for it, against a deadline, rather than asserting the first answer.
    const res = await pollUntil(
      async () => {
        const r = await api.call('GET', path, { token: null });
        return path !== '/readyz' || r.status === 200 ? r : undefined;
      },
      20_000,
      () => `${path} to answer 200`,
    );
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    assertDocumented(doc, 'GET', path, res);
  }
});
