import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createAssuranceClient } from '@assurance/client';
import { buildApp } from '@assurance/example-app-gate';
import { evaluate, loadPolicyFile, verifyCompletion } from '@assurance/policy';

/**
 * The example app's guard end to end over HTTP: fastify route → assurance client → a local server
 * answering like the API (the real policy's baseline, verified with the real verifier).
 */

const policy = loadPolicyFile();
let server: Server;
let baseUrl: string;
let apiStatus = 200;

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (apiStatus !== 200) {
        res.writeHead(apiStatus, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: 'about:blank', title: 'canned', status: apiStatus }));
        return;
      }
      const { identityId, action, completed } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const now = new Date();
      const e = evaluate(
        policy,
        { identityId, tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
        now,
      );
      const tier = policy.tierFor(action);
      const verdict = verifyCompletion(e.tiers[tier], completed, now);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...verdict,
          action,
          tier,
          requirement: e.tiers[tier],
          degraded: false,
          degradedReasons: [],
          sequence: 0,
        }),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function app(url = baseUrl) {
  return buildApp({ client: createAssuranceClient({ mode: 'http', baseUrl: url, token: 't', policy }) });
}

const stepUp = (authenticator: string) =>
  JSON.stringify({ authenticator, authenticatedAt: new Date(Date.now() - 1000).toISOString() });

describe('examples/app-gate: POST /payouts/:id/change', () => {
  it('a fresh security key satisfies payout.change: the change goes through', async () => {
    const res = await app().inject({
      method: 'POST',
      url: '/payouts/p-1/change',
      headers: { 'x-demo-user': 'alice', 'x-demo-step-up': stepUp('security_key') },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { payoutId: 'p-1', status: 'changed' });
  });

  it('an SMS code is refused with 403 problem+json listing what is missing', async () => {
    const res = await app().inject({
      method: 'POST',
      url: '/payouts/p-1/change',
      headers: { 'x-demo-user': 'alice', 'x-demo-step-up': stepUp('sms_otp') },
    });
    assert.equal(res.statusCode, 403);
    assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
    assert.match(String(res.headers['www-authenticate']), /insufficient_user_authentication/);
    const body = res.json();
    assert.equal(body.status, 403);
    assert.equal(body.title, 'Step-up required');
    assert.ok(body.missing.includes('authenticator_not_acceptable'));
    assert.ok(!body.requirement.acceptableAuthenticators.includes('sms_otp'));
    assert.equal(body.degraded, false);
  });

  it('the API unreachable: 403 degraded, never a change', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, 'close');
    const res = await app(`http://127.0.0.1:${port}`).inject({
      method: 'POST',
      url: '/payouts/p-1/change',
      headers: { 'x-demo-user': 'alice', 'x-demo-step-up': stepUp('security_key') },
    });
    assert.equal(res.statusCode, 403);
    const body = res.json();
    assert.equal(body.degraded, true);
    assert.equal(body.missing[0], 'degraded');
    assert.equal(body.title, 'Action on hold');
  });

  it('a rejected token (401 from the API) is a 503, never a change', async () => {
    apiStatus = 401;
    try {
      const res = await app().inject({
        method: 'POST',
        url: '/payouts/p-1/change',
        headers: { 'x-demo-user': 'alice', 'x-demo-step-up': stepUp('security_key') },
      });
      assert.equal(res.statusCode, 503);
      assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
    } finally {
      apiStatus = 200;
    }
  });

  it('no session: 401', async () => {
    const res = await app().inject({ method: 'POST', url: '/payouts/p-1/change' });
    assert.equal(res.statusCode, 401);
  });
});
