/**
 * The console's live streams (GET /console/identities/events), on a real listening server: who
 * may open one, what it sends (a decision's sequence, only for identities the session may see),
 * the bounds, and that a stream ends with its session.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AssuranceReader } from '../assurance-reader.ts';
import type { ExplainDeps } from '../explain.ts';
import type { Scope, TokenGrant } from '../tokens.ts';
import { ActivityView } from './activity.ts';
import { registerConsole } from './routes.ts';
import { SessionStore } from './sessions.ts';

const view = new ActivityView({ lookback: 0, identities: 100 });
const sessions = new SessionStore();
let app: FastifyInstance;
let base: string;

const grant = (name: string, scopes: Scope[], tenants: string[] | null = null): TokenGrant => ({
  name,
  digest: Buffer.alloc(32),
  scopes: new Set(scopes),
  tenants: tenants === null ? null : new Set(tenants),
});

function record(identityId: string, sequence: number, tenantId: string | null = null): Buffer {
  const tier = { outcome: 'step_up' };
  return Buffer.from(
    JSON.stringify({
      identityId,
      tenantId,
      sequence,
      afterV2: {
        riskLevel: 'low',
        tiers: { low: tier, medium: tier, high: tier, critical: tier },
        signals: [],
      },
      reasons: [],
      trigger: { eventId: `e${sequence}`, topic: 't', occurredAt: new Date().toISOString() },
      policyVersion: '1',
      recordedAt: new Date().toISOString(),
    }),
  );
}
let offset = 0;
const decide = (identityId: string, sequence: number, tenantId: string | null = null) =>
  view.addAudit([
    {
      topic: 'audit',
      partition: 0,
      offset: String(offset++),
      key: null,
      value: record(identityId, sequence, tenantId),
      headers: {},
      timestampMs: Date.now(),
    },
  ]);

before(async () => {
  app = Fastify();
  registerConsole(app, {
    tokens: [],
    // The stream route reads none of these.
    reader: {} as AssuranceReader,
    explain: {} as ExplainDeps,
    signals: {
      producer: { send: async () => {}, sendWithOffsets: async () => [], close: async () => {} },
      topic: 't',
      produceTimeoutMs: 1000,
    },
    sessions,
    activity: { feed: { view, state: 'live' }, error: undefined },
    engineHealth: () => ({ state: 'unknown', ageMs: null, error: null }),
    streamPingMs: 100,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
after(() => app.close());

/** Opens a stream; `next()` resolves with the next event's data, `ended` once the server ends it. */
async function open(sessionId: string | undefined, id: string, after = 0) {
  const abort = new AbortController();
  const res = await fetch(`${base}/console/identities/events?id=${encodeURIComponent(id)}&after=${after}`, {
    headers: sessionId ? { cookie: `assurance_console=${sessionId}` } : {},
    signal: abort.signal,
  });
  const reader = res.body?.getReader();
  let buffered = '';
  const decoder = new TextDecoder();
  const events: string[] = [];
  let ended = false;
  const pump = (async () => {
    if (!reader || res.status !== 200) return;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        for (let at = buffered.indexOf('\n\n'); at >= 0; at = buffered.indexOf('\n\n')) {
          const block = buffered.slice(0, at);
          buffered = buffered.slice(at + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: decision') && data) events.push(data.slice(6));
        }
      }
    } catch {
      // aborted by the test
    }
    ended = true;
  })();
  return {
    status: res.status,
    events,
    get ended() {
      return ended;
    },
    pump,
    close: () => abort.abort(),
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('no session: 401; a session without decisions:read: 403', async () => {
  assert.equal((await open(undefined, 'a')).status, 401);
  assert.equal((await open('not-a-session', 'a')).status, 401);
  const s = sessions.create(grant('ops', ['ops:read']));
  assert.equal((await open(s.id, 'a')).status, 403);
});

test('a stream sends what is newer than the page, then each new decision of its identity only', async () => {
  decide('s1', 5);
  const s = sessions.create(grant('soc', ['decisions:read', 'signals:read']));
  const behind = await open(s.id, 's1', 4);
  const current = await open(s.id, 's1', 5);
  assert.equal(behind.status, 200);
  await until(() => behind.events.length === 1, 'the catch-up event');
  decide('other', 1);
  decide('s1', 6);
  await until(() => behind.events.length === 2 && current.events.length === 1, 'the new decision');
  assert.deepEqual(behind.events, ['5', '6']);
  assert.deepEqual(current.events, ['6']);
  behind.close();
  current.close();
});

test("a token bound to tenants hears only its tenants' decisions", async () => {
  const s = sessions.create(grant('acme', ['decisions:read'], ['acme']));
  const stream = await open(s.id, 't1');
  decide('t1', 1, 'globex');
  decide('t1', 2, 'acme');
  await until(() => stream.events.length >= 1, 'the acme decision');
  assert.deepEqual(stream.events, ['2']);
  stream.close();
});

test('at most 8 streams per session; signing out ends them', async () => {
  const s = sessions.create(grant('many', ['decisions:read']));
  const streams: Array<Awaited<ReturnType<typeof open>>> = [];
  for (let i = 0; i < 8; i++) streams.push(await open(s.id, `m${i}`));
  assert.ok(streams.every((x) => x.status === 200));
  assert.equal((await open(s.id, 'm9')).status, 429);
  sessions.destroy(s.id);
  await until(() => streams.every((x) => x.ended), 'the streams to end');
  // The slots are free again for a new session's streams.
  const fresh = sessions.create(grant('again', ['decisions:read']));
  const again = await open(fresh.id, 'm0');
  assert.equal(again.status, 200);
  again.close();
});

test('the overview counts every tenant: a token bound to tenants may not see it', async () => {
  const page = (sessionId: string) =>
    fetch(`${base}/console/overview`, {
      headers: { cookie: `assurance_console=${sessionId}` },
      redirect: 'manual',
    });
  const bound = sessions.create(grant('acme', ['decisions:read'], ['acme']));
  const res = await page(bound.id);
  assert.equal(res.status, 403);
  assert.match(await res.text(), /bound to tenants/);
  const all = await page(sessions.create(grant('soc', ['decisions:read'])).id);
  assert.equal(all.status, 200);
  assert.match(await all.text(), /Engine state unknown/);
});

test('stopping the API ends the streams still open (its server would otherwise wait on them)', async () => {
  const s = sessions.create(grant('late', ['decisions:read']));
  const stream = await open(s.id, 'z');
  assert.equal(stream.status, 200);
  await app.close();
  await until(() => stream.ended, 'the stream to end');
});
