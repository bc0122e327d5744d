import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type AssuranceClient, AssuranceClientError, createAssuranceClient } from '@assurance/client';
import { evaluate, loadPolicyFile } from '@assurance/policy';

/**
 * The client's HTTP handling against a real local server that plays canned API answers. The real
 * API has its own tests; this checks what the client does with good, slow, failing and garbage
 * answers: trust only what validates, fail closed on the rest, throw on configuration errors.
 */

const policy = loadPolicyFile();
const TOKEN = 'test-token-123';
const justNow = () => new Date(Date.now() - 1000).toISOString();

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

let server: Server;
let baseUrl: string;
let handler: Handler;
let seen: Seen[] = [];

function json(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

function problem(res: ServerResponse, status: number, title: string): void {
  json(
    res,
    status,
    { type: 'about:blank', title, status, detail: `${title} (canned)` },
    'application/problem+json',
  );
}

/** What the API answers for GET assurance, from the real policy's baseline. */
function assuranceBody(identityId: string, action: string, overrides: Record<string, unknown> = {}) {
  const now = new Date();
  const e = evaluate(
    policy,
    { identityId, tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
    now,
  );
  const tier = policy.tierFor(action);
  return {
    identityId,
    degraded: false,
    degradedReasons: [],
    sequence: 7,
    policyVersion: policy.version,
    policyDigest: policy.digest,
    computedAt: now.toISOString(),
    validUntil: e.validUntil,
    riskLevel: e.riskLevel,
    action,
    tier,
    requirement: e.tiers[tier],
    ...overrides,
  };
}

function verifyBody(
  identityId: string,
  action: string,
  satisfied: boolean,
  overrides: Record<string, unknown> = {},
) {
  const { requirement, tier, degraded, degradedReasons, sequence } = assuranceBody(identityId, action);
  return {
    satisfied,
    missing: satisfied ? [] : ['authenticator_not_acceptable'],
    action,
    tier,
    requirement,
    degraded,
    degradedReasons,
    sequence,
    ...overrides,
  };
}

function client(overrides: { timeoutMs?: number; baseUrl?: string } = {}): AssuranceClient {
  return createAssuranceClient({
    mode: 'http',
    baseUrl: overrides.baseUrl ?? baseUrl,
    token: TOKEN,
    timeoutMs: overrides.timeoutMs ?? 1000,
    policy,
  });
}

function assertStrictest(a: {
  degraded: boolean;
  requirement: { outcome: string; reasons: readonly string[] };
}) {
  assert.equal(a.degraded, true);
  assert.equal(a.requirement.outcome, 'hold');
  assert.deepEqual(a.requirement.reasons, ['policy.fail_closed']);
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        body,
      });
      handler(req, body, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  seen = [];
});

describe('HTTP mode: valid answers', () => {
  it('requirementFor returns the API answer, with the bearer token and an encoded path', async () => {
    handler = (req, _body, res) => {
      const url = new URL(req.url ?? '', 'http://x');
      json(
        res,
        200,
        assuranceBody(
          decodeURIComponent(url.pathname.split('/')[3] ?? ''),
          url.searchParams.get('action') ?? '',
        ),
      );
    };
    const a = await client().requirementFor('user/42 ü', 'payout.change');
    assert.equal(a.degraded, false);
    assert.deepEqual(a.degradedReasons, []);
    assert.equal(a.source, 'http');
    assert.equal(a.tier, 'high');
    assert.equal(a.sequence, 7);
    assert.equal(a.requirement.outcome, 'step_up');
    assert.ok(!a.requirement.acceptableAuthenticators.includes('sms_otp'));
    assert.equal(a.policyDigest, policy.digest);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.method, 'GET');
    assert.equal(seen[0]?.url, '/v1/identities/user%2F42%20%C3%BC/assurance?action=payout.change');
    assert.equal(seen[0]?.authorization, `Bearer ${TOKEN}`);
  });

  it('verify posts what the session completed and returns the verdict', async () => {
    handler = (_req, body, res) => {
      const { identityId, action } = JSON.parse(body) as { identityId: string; action: string };
      json(res, 200, verifyBody(identityId, action, true));
    };
    const completed = { authenticator: 'security_key', authenticatedAt: justNow() } as const;
    const v = await client().verify('alice', 'payout.change', completed);
    assert.equal(v.satisfied, true);
    assert.deepEqual(v.missing, []);
    assert.equal(v.degraded, false);
    assert.deepEqual(JSON.parse(seen[0]?.body ?? ''), {
      identityId: 'alice',
      action: 'payout.change',
      completed,
    });
    assert.equal(seen[0]?.method, 'POST');
    assert.equal(seen[0]?.url, '/v1/assurance/verify');
  });

  it('an API "satisfied" that its own requirement contradicts is not satisfied', async () => {
    handler = (_req, _body, res) => json(res, 200, verifyBody('alice', 'payout.change', true));
    const v = await client().verify('alice', 'payout.change', {
      authenticator: 'sms_otp',
      authenticatedAt: justNow(),
    });
    assert.equal(v.satisfied, false);
    assert.ok(v.missing.includes('authenticator_not_acceptable'));
  });

  it('an answer the API itself marks degraded never verifies', async () => {
    handler = (_req, _body, res) =>
      json(
        res,
        200,
        verifyBody('alice', 'payout.change', true, { degraded: true, degradedReasons: ['stale_state'] }),
      );
    const v = await client().verify('alice', 'payout.change', {
      authenticator: 'security_key',
      authenticatedAt: justNow(),
    });
    assert.equal(v.satisfied, false);
    assert.equal(v.missing[0], 'degraded');
    assert.deepEqual(v.degradedReasons, ['stale_state']);
  });
});

describe('HTTP mode: fails closed on trouble', () => {
  it('a timeout gives the strictest requirement, degraded timeout', async () => {
    handler = () => {}; // never answers
    const started = Date.now();
    const a = await client({ timeoutMs: 200 }).requirementFor('alice', 'payout.change');
    assert.ok(Date.now() - started < 2000, 'the timeout bounds the call');
    assertStrictest(a);
    assert.deepEqual(a.degradedReasons, ['timeout']);
    assert.equal(a.tier, 'high');
    const v = await client({ timeoutMs: 200 }).verify('alice', 'payout.change', {
      authenticator: 'security_key',
      authenticatedAt: justNow(),
    });
    assert.equal(v.satisfied, false);
    assert.deepEqual(v.missing, ['degraded', 'action_on_hold']);
  });

  it('a body that stalls after the headers is a timeout too', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"identityId":');
    };
    const a = await client({ timeoutMs: 200 }).requirementFor('alice', 'payout.change');
    assertStrictest(a);
    assert.deepEqual(a.degradedReasons, ['timeout']);
  });

  it('500 gives the strictest requirement, degraded server_error', async () => {
    handler = (_req, _body, res) => problem(res, 500, 'Internal Server Error');
    const a = await client().requirementFor('alice', 'payout.change');
    assertStrictest(a);
    assert.deepEqual(a.degradedReasons, ['server_error']);
  });

  it('503 on verify is degraded and unsatisfied', async () => {
    handler = (_req, _body, res) => problem(res, 503, 'Service Unavailable');
    const v = await client().verify('alice', 'mfa.reset', {
      authenticator: 'security_key',
      authenticatedAt: justNow(),
    });
    assert.equal(v.satisfied, false);
    assert.equal(v.tier, 'critical');
    assert.deepEqual(v.degradedReasons, ['server_error']);
  });

  it('429 is degraded rate_limited', async () => {
    handler = (_req, _body, res) => problem(res, 429, 'Too Many Requests');
    assert.deepEqual((await client().requirementFor('alice', 'payout.change')).degradedReasons, [
      'rate_limited',
    ]);
  });

  const garbage: Array<[string, Handler]> = [
    ['not JSON', (_q, _b, res) => json(res, 200, '<html>hello</html>')],
    ['JSON of the wrong shape', (_q, _b, res) => json(res, 200, { ok: true })],
    [
      'a requirement that breaks the contract',
      (_q, _b, res) =>
        json(
          res,
          200,
          assuranceBody('alice', 'payout.change', { requirement: { outcome: 'allow_everything' } }),
        ),
    ],
    [
      'an answer about another identity',
      (_q, _b, res) => json(res, 200, assuranceBody('mallory', 'payout.change')),
    ],
    [
      'an answer about another action',
      (_q, _b, res) => json(res, 200, assuranceBody('alice', 'profile.view')),
    ],
    [
      'a JSON body labelled text/plain',
      (_q, _b, res) => json(res, 200, assuranceBody('alice', 'payout.change'), 'text/plain'),
    ],
    ['an oversized body', (_q, _b, res) => json(res, 200, { pad: 'x'.repeat(300 * 1024) })],
  ];
  for (const [what, h] of garbage) {
    it(`${what} is degraded bad_response`, async () => {
      handler = h;
      const a = await client().requirementFor('alice', 'payout.change');
      assertStrictest(a);
      assert.deepEqual(a.degradedReasons, ['bad_response']);
    });
  }

  it('a verify answer whose satisfied flag disagrees with missing is bad_response', async () => {
    handler = (_req, _body, res) =>
      json(res, 200, verifyBody('alice', 'payout.change', true, { missing: ['x'] }));
    const v = await client().verify('alice', 'payout.change', {
      authenticator: 'security_key',
      authenticatedAt: justNow(),
    });
    assert.equal(v.satisfied, false);
    assert.deepEqual(v.degradedReasons, ['bad_response']);
  });

  it('nobody listening is degraded unreachable', async () => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, 'close');
    const a = await client({ baseUrl: `http://127.0.0.1:${port}` }).requirementFor('alice', 'payout.change');
    assertStrictest(a);
    assert.deepEqual(a.degradedReasons, ['unreachable']);
  });
});

describe('HTTP mode: configuration errors throw', () => {
  const cases: Array<[number, string]> = [
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [404, 'not_found'],
    [400, 'invalid_request'],
  ];
  for (const [status, code] of cases) {
    it(`${status} throws AssuranceClientError ${code} with the problem details`, async () => {
      handler = (_req, _body, res) => problem(res, status, `canned ${status}`);
      await assert.rejects(client().requirementFor('alice', 'payout.change'), (e: unknown) => {
        assert.ok(e instanceof AssuranceClientError);
        assert.equal(e.code, code);
        assert.equal(e.status, status);
        assert.equal(e.problem?.title, `canned ${status}`);
        return true;
      });
    });
  }

  it('a redirect is never followed (it would carry the token) and throws unexpected_status', async () => {
    handler = (req, _body, res) => {
      if (req.url?.startsWith('/elsewhere')) return json(res, 200, assuranceBody('alice', 'payout.change'));
      res.writeHead(302, { location: `${baseUrl}/elsewhere` });
      res.end();
    };
    await assert.rejects(
      client().requirementFor('alice', 'payout.change'),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'unexpected_status' && e.status === 302,
    );
    assert.equal(seen.length, 1);
  });

  it('a failing token source throws unauthorized without a request', async () => {
    const c = createAssuranceClient({
      mode: 'http',
      baseUrl,
      policy,
      token: () => {
        throw new Error('vault sealed');
      },
    });
    await assert.rejects(
      c.requirementFor('alice', 'payout.change'),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'unauthorized',
    );
    assert.equal(seen.length, 0);
  });
});
