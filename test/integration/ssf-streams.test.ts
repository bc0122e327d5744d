/**
 * Shared Signals streams and poll delivery on the real stack, modeled on the OpenID Foundation's
 * SSF receiver test plan: our stream-management client and the `assurance ssf` CLI against a
 * transmitter written in the test (create and delete, 409 on a second create, status, subjects,
 * verification and its interval), and the API polling it (RFC 8936): acknowledgements for applied
 * SETs, `setErrs` with the RFC 8935 code for invalid ones, the verification event received.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DELIVERY_POLL, requestedEvents, StreamApiError, StreamClient } from '@assurance/ssf';
import { ApiProcess } from '../src/api-process.ts';
import { startPipeline } from '../src/pipeline.ts';
import { API_TOKEN, AUDIENCE, RISC, ssfCli, ssfSets, TestTransmitter } from '../src/ssf-transmitter.ts';
import { freePort, pollUntil } from '../src/wait.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: ApiProcess;
let tx: TestTransmitter;
let dir: string;
let file: string;
let client: StreamClient;

before(async () => {
  p = await startPipeline();
  tx = await TestTransmitter.start();
  dir = mkdtempSync(path.join(tmpdir(), 'ssf-streams-'));
  file = path.join(dir, 'transmitters.yaml');
  writeFileSync(
    file,
    [
      `audience: ${AUDIENCE}`,
      'transmitters:',
      '  - name: polled',
      `    issuer: ${tx.issuer}`,
      `    jwksUri: ${tx.jwksUri}`,
      `    poll: { endpoint: ${tx.pollEndpoint}, token: ${tx.pollToken}, interval: 200ms }`,
      `    managementToken: ${tx.managementToken}`,
      '    whenUnavailable: high',
      '    verify: { every: 1s, maxAge: 4s }',
      '',
    ].join('\n'),
  );
  api = await ApiProcess.start(p.config, {
    port: await freePort(),
    tokens: `ops:${API_TOKEN}:ops:read+decisions:read`,
    env: { SSF_TRANSMITTERS_FILE: file, SSF_CHECK_INTERVAL: '300ms' },
  });
  client = new StreamClient({ issuer: tx.issuer, token: tx.managementToken });
});

after(async () => {
  await api?.stop();
  await tx?.stop();
  await p?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => ssfCli(file, args);
const metric = (outcome: string) => ssfSets(api.base, outcome);

describe('stream management', () => {
  test('create (poll), a second create updates the existing stream (409), read, and delete', async () => {
    const created = await client.createStream({
      events_requested: requestedEvents(),
      delivery: { method: DELIVERY_POLL },
    });
    assert.equal(created.delivery?.method, DELIVERY_POLL);
    // What the transmitter delivers is what counts: here every RISC and CAEP type we asked for.
    assert.deepEqual(created.events_delivered, requestedEvents());
    const again = await client.createStream({
      events_requested: [`${RISC}credential-compromise`],
      delivery: { method: DELIVERY_POLL },
      description: 'updated',
    });
    assert.equal(again.stream_id, created.stream_id);
    assert.equal(again.description, 'updated');
    const read = await client.getStream(created.stream_id);
    assert.ok(!Array.isArray(read) && read.events_delivered?.length === 1);
    await client.deleteStream(created.stream_id);
    await assert.rejects(
      client.getStream(created.stream_id),
      (e: unknown) => e instanceof StreamApiError && e.status === 404,
    );
  });

  test('the CLI creates the stream, lists it with its status, pauses and resumes it', async () => {
    const created = await cli(['create', 'polled', '--poll']);
    assert.equal(created.code, 0, created.err);
    const id = (JSON.parse(created.out) as { stream_id: string }).stream_id;
    const listed = await cli(['streams', '--json']);
    assert.equal(listed.code, 0, listed.err);
    const rows = JSON.parse(listed.out) as Array<{
      transmitter: string;
      status?: string;
      stream: { stream_id: string } | null;
    }>;
    assert.deepEqual(
      rows.map((r) => [r.transmitter, r.stream?.stream_id, r.status]),
      [['polled', id, 'enabled']],
    );
    const paused = await cli(['status', 'polled', id, 'paused', '--reason', 'maintenance']);
    assert.equal(paused.code, 0, paused.err);
    assert.equal((await client.status(id)).status, 'paused');
    assert.equal((await cli(['status', 'polled', id, 'enabled'])).code, 0);
    assert.equal((await client.status(id)).status, 'enabled');
    const bad = await cli(['status', 'polled', id, 'sleeping']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /enabled, paused or disabled/);
  });

  test('subjects are added and removed', async () => {
    const s = tx.stream;
    assert.ok(s, 'the CLI created a stream');
    const subject = { format: 'email', email: 'someone@example.com' };
    await client.addSubject(s.stream_id, subject);
    assert.deepEqual(tx.stream?.subjects, [subject]);
    assert.equal((await cli(['remove-subject', 'polled', s.stream_id, JSON.stringify(subject)])).code, 0);
    assert.deepEqual(tx.stream?.subjects, []);
  });

  test('a discovery document naming another issuer is refused', async () => {
    const other = new StreamClient({ issuer: `${tx.issuer}/`, token: tx.managementToken });
    await assert.rejects(other.configuration(), /names issuer/);
  });
});

describe('poll delivery (RFC 8936)', () => {
  test('a verification state the API did not ask for is answered invalid_state; asking again too soon is 429', async () => {
    const s = tx.stream;
    assert.ok(s);
    const before = new Set(tx.setErrs.keys());
    try {
      await client.requestVerification(s.stream_id, 'a-state-nobody-asked-for');
      tx.minVerificationIntervalS = 30;
      const refused = await pollUntil(
        async () => [...tx.setErrs].find(([jti, e]) => !before.has(jti) && e.err === 'invalid_state'),
        15_000,
        () => `setErrs ${JSON.stringify([...tx.setErrs])}`,
      );
      assert.ok(refused);
      await assert.rejects(
        client.requestVerification(s.stream_id, 'again'),
        (e: unknown) => e instanceof StreamApiError && e.status === 429,
      );
    } finally {
      tx.minVerificationIntervalS = 0;
    }
  });

  test('applied SETs are acknowledged, invalid ones answered in setErrs with their code, and the signal decided', async () => {
    const identity = `ssf-polled-${Date.now()}`;
    const subject = { format: 'iss_sub', iss: tx.issuer, sub: identity };
    const good = await tx.set(AUDIENCE, `${RISC}recovery-activated`, {}, subject);
    const wrongAud = await tx.set('https://elsewhere.example', `${RISC}recovery-activated`, {}, subject);
    const wrongIss = await tx.set(AUDIENCE, `${RISC}recovery-activated`, {}, subject, {
      claims: { iss: 'https://evil.example' },
    });
    tx.enqueue(good);
    tx.enqueue(wrongAud);
    tx.enqueue(wrongIss);
    await pollUntil(
      async () =>
        tx.acked.has(good.jti) && tx.setErrs.has(wrongAud.jti) && tx.setErrs.has(wrongIss.jti)
          ? true
          : undefined,
      15_000,
      () => `acks ${[...tx.acked].join(',')}; setErrs ${JSON.stringify([...tx.setErrs])}`,
    );
    assert.equal(tx.setErrs.get(wrongAud.jti)?.err, 'invalid_audience');
    assert.equal(tx.setErrs.get(wrongIss.jti)?.err, 'invalid_issuer');
    assert.ok(!tx.acked.has(wrongAud.jti) && !tx.acked.has(wrongIss.jti));
    const d = await p.watcher.waitFor(identity, (x) => x.trigger.eventId === `ssf.polled.${good.jti}`);
    assert.ok(d.signals.some((sig) => (sig.attributes as Record<string, unknown>).raisedBy === 'ssf:polled'));
  });
});

/** The API's answer for an identity (every tier). */
async function read(
  identity: string,
): Promise<{ degraded: boolean; degradedReasons: string[]; tiers: Record<string, { outcome: string }> }> {
  const r = await fetch(`${api.base}/v1/identities/${identity}/assurance`, {
    headers: { authorization: `Bearer ${API_TOKEN}` },
  });
  assert.equal(r.status, 200);
  return (await r.json()) as {
    degraded: boolean;
    degradedReasons: string[];
    tiers: Record<string, { outcome: string }>;
  };
}

describe('a stream that is not healthy fails closed', () => {
  test('the API verifies the stream by itself; paused, high and critical fail closed; resumed, answers are whole again', async () => {
    const s = tx.stream;
    assert.ok(s, 'the CLI created a stream');
    const identity = `ssf-health-${Date.now()}`;
    // Healthy: the API read its status and had a state of its own echoed.
    let last: unknown;
    const healthy = await pollUntil(
      async () => {
        const a = await read(identity);
        last = a.degradedReasons;
        return a.degraded ? undefined : a;
      },
      20_000,
      () => `an undegraded answer (last reasons ${JSON.stringify(last)})`,
    );
    assert.ok((await metric('verification')) > 0, 'the API asked for and received a verification');
    assert.equal((await cli(['status', 'polled', s.stream_id, 'paused', '--reason', 'test'])).code, 0);
    const closed = await pollUntil(
      async () => {
        const a = await read(identity);
        return a.degradedReasons.includes('signal_source_unavailable') ? a : undefined;
      },
      10_000,
      () => 'a fail-closed answer',
    );
    assert.equal(closed.degraded, true);
    // The tiers below the configured one keep the evaluation; high and critical are at their strictest.
    assert.deepEqual(closed.tiers.low, healthy.tiers.low);
    assert.deepEqual(closed.tiers.medium, healthy.tiers.medium);
    assert.notDeepEqual(closed.tiers.high, healthy.tiers.high);
    assert.ok(
      ['hold', 'deny'].includes(closed.tiers.critical?.outcome ?? ''),
      JSON.stringify(closed.tiers.critical),
    );
    assert.equal((await cli(['status', 'polled', s.stream_id, 'enabled'])).code, 0);
    await pollUntil(
      async () => ((await read(identity)).degraded ? undefined : true),
      10_000,
      () => 'an undegraded answer after resuming',
    );
  });
});
