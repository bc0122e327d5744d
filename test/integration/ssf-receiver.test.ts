/**
 * Shared Signals, receiving side, on the real stack: a transmitter implemented in the test (real
 * HTTP, jose-signed SETs) pushes to the API process (RFC 8935), whose signals go through Kafka to
 * the engine. Modeled on the OpenID Foundation's SSF receiver test plan: the happy path, invalid
 * SETs (corrupted signature, wrong iss, wrong aud, unknown kid), authentication, a redelivered SET,
 * an event for a subject of no one, and key rotation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Decision } from '@assurance/schemas';
import { ApiProcess } from '../src/api-process.ts';
import { bindSmsPhone, startPipeline } from '../src/pipeline.ts';
import { API_TOKEN, AUDIENCE, RISC, ssfSets, TestTransmitter } from '../src/ssf-transmitter.ts';
import { freePort, pollUntil } from '../src/wait.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: ApiProcess;
let idp: TestTransmitter;
let dir: string;
let push: string;

before(async () => {
  p = await startPipeline();
  idp = await TestTransmitter.start();
  dir = mkdtempSync(path.join(tmpdir(), 'ssf-'));
  const file = path.join(dir, 'transmitters.yaml');
  writeFileSync(
    file,
    [
      `audience: ${AUDIENCE}`,
      'transmitters:',
      '  - name: idp',
      `    issuer: ${idp.issuer}`,
      `    jwksUri: ${idp.jwksUri}`,
      '    algorithms: [RS256]',
      `    pushToken: ${idp.pushToken}`,
      '  - name: poll-only',
      '    issuer: https://poll.example',
      '    jwksUri: https://poll.example/jwks',
      '',
    ].join('\n'),
  );
  api = await ApiProcess.start(p.config, {
    port: await freePort(),
    tokens: `ops:${API_TOKEN}:ops:read+decisions:read`,
    env: { SSF_TRANSMITTERS_FILE: file },
  });
  push = `${api.base}/ssf/v1/push/idp`;
});

after(async () => {
  await api?.stop();
  await idp?.stop();
  await p?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An identity whose SMS codes reach `phone`, decided once. */
async function bindPhone(identityId: string, phone: string): Promise<void> {
  const d = await bindSmsPhone(p, identityId, phone);
  assert.ok(d.tiers.medium.acceptableAuthenticators.includes('sms_otp'), 'SMS is accepted before');
}

const user = (id: string) => ({ format: 'iss_sub', iss: idp.issuer, sub: id });
let phones = 0;
const freshPhone = () =>
  `+49151${String(Date.now() % 1_000_000).padStart(6, '0')}${String(phones++).padStart(2, '0')}`;

const metric = (outcome: string) => ssfSets(api.base, outcome);

describe('happy path', () => {
  test('a RISC credential-compromise for phone-sms excludes SMS codes for the identity bound to that phone', async () => {
    const identity = `ssf-sms-${Date.now()}`;
    const phone = freshPhone();
    await bindPhone(identity, phone);
    const { jti, token } = await idp.set(
      AUDIENCE,
      `${RISC}credential-compromise`,
      { credential_type: 'phone-sms' },
      { format: 'phone_number', phone_number: phone },
    );
    const sent = Date.now();
    const r = await idp.push(push, token);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const d: Decision = await p.watcher.waitFor(identity, (x) =>
      x.signals.some((s) => s.code === 'channel_compromised'),
    );
    const ms = Date.now() - sent;
    process.stdout.write(`[ssf] push to decision excluding SMS: ${ms} ms\n`);
    for (const tier of ['medium', 'high', 'critical'] as const)
      assert.ok(!d.tiers[tier].acceptableAuthenticators.includes('sms_otp'), `${tier} still accepts SMS`);
    const signal = d.signals.find((s) => s.code === 'channel_compromised');
    const attrs = signal?.attributes as Record<string, unknown>;
    // Provenance: who raised it and which SET, for the audit trail.
    assert.equal(attrs.raisedBy, 'ssf:idp');
    assert.equal(d.trigger.eventId, `ssf.idp.${jti}`);
  });
});

describe('the receiver test plan’s invalid SETs', () => {
  const subject = () => user(`ssf-invalid-${Date.now()}`);
  const type = `${RISC}recovery-activated`;

  test('corrupted signature → 400 invalid_key', async () => {
    const { token } = await idp.set(AUDIENCE, type, {}, subject());
    const [h, pl, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[0] = (sig[0] as number) ^ 0xff;
    const r = await idp.push(push, `${h}.${pl}.${sig.toString('base64url')}`);
    assert.deepEqual([r.status, r.body?.err], [400, 'invalid_key']);
  });

  test('wrong iss → 400 invalid_issuer', async () => {
    const { token } = await idp.set(AUDIENCE, type, {}, subject(), {
      claims: { iss: 'https://evil.example' },
    });
    const r = await idp.push(push, token);
    assert.deepEqual([r.status, r.body?.err], [400, 'invalid_issuer']);
  });

  test('wrong aud → 400 invalid_audience', async () => {
    const { token } = await idp.set('https://someone-else.example', type, {}, subject());
    const r = await idp.push(push, token);
    assert.deepEqual([r.status, r.body?.err], [400, 'invalid_audience']);
  });

  test('unknown kid → 400 invalid_key once a fresh key set lacks it (or 503, retry, within the refetch cooldown)', async () => {
    const { token } = await idp.set(AUDIENCE, type, {}, subject(), { header: { kid: 'k-never-published' } });
    const r = await idp.push(push, token);
    assert.ok(
      (r.status === 400 && r.body?.err === 'invalid_key') || r.status === 503,
      `${r.status} ${JSON.stringify(r.body)}`,
    );
  });

  test('typ JWT, sub and exp claims, two events: 400 invalid_request', async () => {
    const bad = [
      await idp.set(AUDIENCE, type, {}, subject(), { header: { typ: 'JWT' } }),
      await idp.set(AUDIENCE, type, {}, subject(), { claims: { sub: 'user' } }),
      await idp.set(AUDIENCE, type, {}, subject(), { claims: { exp: Math.floor(Date.now() / 1000) + 600 } }),
      await idp.set(AUDIENCE, type, {}, subject(), {
        claims: { events: { [type]: {}, [`${RISC}opt-in`]: {} } },
      }),
    ];
    for (const { token } of bad) {
      const r = await idp.push(push, token);
      assert.deepEqual([r.status, r.body?.err], [400, 'invalid_request'], JSON.stringify(r.body));
    }
  });

  test('no push token → 401 authentication_failed; a wrong one too; a transmitter that does not push → 403', async () => {
    const { token } = await idp.set(AUDIENCE, type, {}, subject());
    const none = await idp.push(push, token, { bearer: null });
    assert.deepEqual([none.status, none.body?.err], [401, 'authentication_failed']);
    const wrong = await idp.push(push, token, { bearer: 'x'.repeat(32) });
    assert.deepEqual([wrong.status, wrong.body?.err], [401, 'authentication_failed']);
    const pollOnly = await idp.push(`${api.base}/ssf/v1/push/poll-only`, token);
    assert.deepEqual([pollOnly.status, pollOnly.body?.err], [403, 'access_denied']);
    const unknown = await idp.push(`${api.base}/ssf/v1/push/nobody`, token);
    assert.deepEqual([unknown.status, unknown.body?.err], [403, 'access_denied']);
  });

  test('a SET sent as JSON → 400 invalid_request', async () => {
    const { token } = await idp.set(AUDIENCE, type, {}, subject());
    const r = await idp.push(push, JSON.stringify({ set: token }), { contentType: 'application/json' });
    assert.deepEqual([r.status, r.body?.err], [400, 'invalid_request']);
  });

  test('every refusal is counted by reason', async () => {
    assert.ok((await metric('rejected_signature')) >= 1);
    assert.ok((await metric('rejected_issuer')) >= 1);
    assert.ok((await metric('rejected_audience')) >= 1);
    assert.ok((await metric('rejected_not_authenticated')) >= 2);
  });
});

describe('delivery', () => {
  test('a redelivered SET is acknowledged again and applied once', async () => {
    const identity = `ssf-redelivered-${Date.now()}`;
    const first = await idp.set(AUDIENCE, `${RISC}recovery-activated`, {}, user(identity));
    assert.equal((await idp.push(push, first.token)).status, 202);
    await p.watcher.waitFor(identity, (d) => d.trigger.eventId === `ssf.idp.${first.jti}`);
    assert.equal((await idp.push(push, first.token)).status, 202);
    // A later SET for the same identity: once it is decided, the redelivery was processed before it.
    const marker = await idp.set(AUDIENCE, `${RISC}recovery-information-changed`, {}, user(identity));
    assert.equal((await idp.push(push, marker.token)).status, 202);
    await p.watcher.waitFor(identity, (d) => d.trigger.eventId === `ssf.idp.${marker.jti}`);
    const fromFirst = p.watcher
      .forIdentity(identity)
      .filter((d) => d.trigger.eventId === `ssf.idp.${first.jti}`);
    assert.equal(fromFirst.length, 1);
  });

  test('an event for a subject of no one (another issuer’s user) is acknowledged and not applied', async () => {
    const before = await metric('ignored_no_subject');
    const { token } = await idp.set(
      AUDIENCE,
      `${RISC}recovery-activated`,
      {},
      {
        format: 'iss_sub',
        iss: 'https://other-idp.example',
        sub: 'someone',
      },
    );
    assert.equal((await idp.push(push, token)).status, 202);
    assert.equal(await metric('ignored_no_subject'), before + 1);
  });

  test('an unsolicited verification (no state) is acknowledged, and proves nothing', async () => {
    const before = await metric('verification_unsolicited');
    const { token } = await idp.set(
      AUDIENCE,
      'https://schemas.openid.net/secevent/ssf/event-type/verification',
      {},
      {
        format: 'opaque',
        id: 'stream-1',
      },
    );
    assert.equal((await idp.push(push, token)).status, 202);
    assert.equal(await metric('verification_unsolicited'), before + 1);
  });

  test('a rotated key: SETs signed with the new key are accepted once the JWKS publishes it', async () => {
    const identity = `ssf-rotated-${Date.now()}`;
    await idp.rotate();
    const { jti, token } = await idp.set(AUDIENCE, `${RISC}recovery-activated`, {}, user(identity));
    // Within the receiver's refetch cooldown it may answer 503 (retry), as a transmitter would.
    let r = await idp.push(push, token);
    for (let i = 0; r.status === 503 && i < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      r = await idp.push(push, token);
    }
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await p.watcher.waitFor(identity, (d) => d.trigger.eventId === `ssf.idp.${jti}`);
  });
});

describe('stream status announced by the transmitter', () => {
  const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';
  const read = async (identity: string) => {
    const r = await fetch(`${api.base}/v1/identities/${identity}/assurance`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    assert.equal(r.status, 200);
    return (await r.json()) as { degraded: boolean; degradedReasons: string[] };
  };

  test('a stream-updated SET that disables the stream makes high tiers fail closed until it is enabled again', async () => {
    const identity = `ssf-announced-${Date.now()}`;
    const stream = { format: 'opaque', id: 'stream-1' };
    const disabled = await idp.set(
      AUDIENCE,
      `${SSF}stream-updated`,
      { status: 'disabled', reason: 'maintenance' },
      stream,
    );
    assert.equal((await idp.push(push, disabled.token)).status, 202);
    await pollUntil(
      async () =>
        (await read(identity)).degradedReasons.includes('signal_source_unavailable') ? true : undefined,
      10_000,
      () => 'a fail-closed answer while the stream is disabled',
    );
    const enabled = await idp.set(AUDIENCE, `${SSF}stream-updated`, { status: 'enabled' }, stream);
    assert.equal((await idp.push(push, enabled.token)).status, 202);
    await pollUntil(
      async () => ((await read(identity)).degraded ? undefined : true),
      10_000,
      () => 'an undegraded answer once enabled',
    );
  });
});
