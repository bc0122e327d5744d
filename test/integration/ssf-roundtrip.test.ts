/**
 * Shared Signals both ways on the real stack: deployment A transmits (its API with SSF_ISSUER),
 * deployment B receives (its API with A in SSF_TRANSMITTERS_FILE). B's operator creates B's stream
 * at A with the CLI, polled; then a SIM swap decided in A becomes, in B, a signal on the same
 * identity that excludes SMS codes. Push delivery with retries and the dead-letter topic, and A's
 * transmitter routes (discovery, JWKS, stream status, verification) are checked on the way.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { keySpace, SsfTransmitStore } from '@assurance/redis';
import { generateSsfKey, StreamClient } from '@assurance/ssf';
import { ApiProcess } from '../src/api-process.ts';
import { storeRedis } from '../src/harness.ts';
import { bindSmsPhone, envelope, startPipeline } from '../src/pipeline.ts';
import { ssfCli } from '../src/ssf-transmitter.ts';
import { freePort, pollUntil } from '../src/wait.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
const RX_TOKEN = 'receiver-b-token-0123456789abcdef';
const OPS_TOKEN = 'ops-token-0123456789abcdefghijklmn';

let a: Pipeline;
let b: Pipeline;
let apiA: ApiProcess;
let apiB: ApiProcess;
let dir: string;
let file: string;
let issuer: string;

before(async () => {
  [a, b] = await Promise.all([startPipeline(), startPipeline()]);
  const portA = await freePort();
  issuer = `http://127.0.0.1:${portA}`;
  apiA = await ApiProcess.start(a.config, {
    port: portA,
    tokens: `b:${RX_TOKEN}:ssf:stream,ops:${OPS_TOKEN}:decisions:read+ops:read`,
    env: { SSF_ISSUER: issuer, SSF_SIGNING_KEYS: JSON.stringify([await generateSsfKey()]) },
  });
  dir = mkdtempSync(path.join(tmpdir(), 'ssf-roundtrip-'));
  file = path.join(dir, 'transmitters.yaml');
  writeFileSync(
    file,
    [
      // What A puts in `aud` for receiver b, unless b names another when creating its stream.
      `audience: ${issuer}/receivers/b`,
      'transmitters:',
      '  - name: a',
      `    issuer: ${issuer}`,
      `    jwksUri: ${issuer}/ssf/v1/jwks`,
      `    poll: { endpoint: ${issuer}/ssf/v1/poll, token: ${RX_TOKEN}, interval: 200ms }`,
      `    managementToken: ${RX_TOKEN}`,
      '',
    ].join('\n'),
  );
  apiB = await ApiProcess.start(b.config, {
    port: await freePort(),
    tokens: `ops:${OPS_TOKEN}:decisions:read+ops:read`,
    env: { SSF_TRANSMITTERS_FILE: file, SSF_CHECK_INTERVAL: '300ms' },
  });
});

after(async () => {
  await Promise.allSettled([apiA?.stop(), apiB?.stop()]);
  await Promise.allSettled([a?.stop(), b?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => ssfCli(file, args);
const bindPhone = bindSmsPhone;

describe('A transmits, B receives', () => {
  test("A's discovery document and JWKS are public; its stream routes need a receiver's token", async () => {
    const conf = (await (await fetch(`${issuer}/.well-known/ssf-configuration`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(conf.issuer, issuer);
    assert.equal(conf.jwks_uri, `${issuer}/ssf/v1/jwks`);
    const jwks = (await (await fetch(`${issuer}/ssf/v1/jwks`)).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]?.d, undefined, 'no private key material');
    assert.equal((await fetch(`${issuer}/ssf/v1/streams`)).status, 401);
    const wrong = await fetch(`${issuer}/ssf/v1/streams`, {
      headers: { authorization: `Bearer ${OPS_TOKEN}` },
    });
    assert.equal(wrong.status, 403);
  });

  test("B's operator creates B's stream at A with the CLI; B verifies it and finds it healthy", async () => {
    const created = await cli(['create', 'a', '--poll']);
    assert.equal(created.code, 0, created.err);
    const stream = JSON.parse(created.out) as { stream_id: string; events_delivered: string[] };
    assert.ok(
      stream.events_delivered.includes(
        'https://schemas.openid.net/secevent/caep/event-type/risk-level-change',
      ),
    );
    assert.ok(
      stream.events_delivered.includes(
        'https://schemas.openid.net/secevent/risc/event-type/credential-compromise',
      ),
    );
    const listed = await cli(['streams', '--json']);
    assert.equal(listed.code, 0, listed.err);
    assert.match(listed.out, /"status": "enabled"/);
    // A second stream for the same receiver is refused; the client reads and updates the first.
    const again = await new StreamClient({ issuer, token: RX_TOKEN }).createStream({
      events_requested: ['https://schemas.openid.net/secevent/caep/event-type/risk-level-change'],
      delivery: { method: 'urn:ietf:rfc:8936' },
    });
    assert.equal(again.stream_id, stream.stream_id);
    assert.deepEqual([...(again.events_delivered ?? [])].sort(), [
      'https://schemas.openid.net/secevent/caep/event-type/risk-level-change',
      'https://schemas.openid.net/secevent/ssf/event-type/verification',
    ]);
    assert.equal((await cli(['create', 'a', '--poll'])).code, 0, 'back to every mapped event');
  });

  test('a SIM swap decided in A excludes SMS codes for the same identity in B', async () => {
    const identity = `roundtrip-${Date.now()}`;
    const phone = `+4915199${String(Date.now() % 100_000).padStart(5, '0')}`;
    await Promise.all([
      bindPhone(a, identity, phone),
      bindPhone(b, identity, `+4917088${String(Date.now() % 100_000).padStart(5, '0')}`),
    ]);
    const before = b.watcher.forIdentity(identity).at(-1);
    assert.ok(before?.tiers.medium.acceptableAuthenticators.includes('sms_otp'), 'B accepts SMS before');
    await a.producer.send(a.topics.simSwap, phone, {
      ...envelope(),
      phoneNumber: phone,
      swappedAt: new Date(Date.now() - 60_000).toISOString(),
      changeType: 'sim_change',
    });
    const inA = await a.watcher.waitFor(identity, (d) => d.signals.some((s) => s.code === 'sim_swap'));
    const started = Date.now();
    const inB = await b.watcher.waitFor(
      identity,
      (d) =>
        d.signals.some((s) => (s.attributes as Record<string, unknown>).raisedBy === 'ssf:a') &&
        !d.tiers.medium.acceptableAuthenticators.includes('sms_otp'),
    );
    process.stdout.write(
      `[ssf] A decided ${inA.sequence}; B excluded SMS ${Date.now() - started} ms after\n`,
    );
    // B's decision says where it came from (A's SET, by its event id), and what it is: a SIM swap
    // on the identity, no phone named, so every SMS and voice factor of it is excluded.
    assert.match(inB.trigger.eventId, /^ssf\.a\./);
    const swap = inB.signals.find((s) => s.code === 'sim_swap');
    assert.equal(swap?.scope, 'identity');
    assert.equal((swap?.attributes as Record<string, unknown> | undefined)?.raisedBy, 'ssf:a');
    assert.ok(!inB.tiers.medium.acceptableAuthenticators.includes('voice_otp'));
  });

  test('a subject B removed from its stream: A sends nothing about it; a paused stream holds the rest', async () => {
    const listed = JSON.parse((await cli(['streams', '--json'])).out) as Array<{
      stream: { stream_id: string };
    }>;
    const streamId = listed[0]?.stream.stream_id as string;
    const [removed, kept] = [`roundtrip-removed-${Date.now()}`, `roundtrip-kept-${Date.now()}`];
    // Paused: what A sends waits in the outbox, where this test can read it.
    assert.equal((await cli(['status', 'a', streamId, 'paused'])).code, 0);
    const subject = JSON.stringify({ format: 'iss_sub', iss: issuer, sub: removed });
    assert.equal((await cli(['remove-subject', 'a', streamId, subject])).code, 0);
    const phones = [
      `+4915177${String(Date.now() % 100_000).padStart(5, '0')}`,
      `+4915166${String(Date.now() % 100_000).padStart(5, '0')}`,
    ];
    await Promise.all([bindPhone(a, removed, phones[0] as string), bindPhone(a, kept, phones[1] as string)]);
    for (const phone of phones)
      await a.producer.send(a.topics.simSwap, phone, {
        ...envelope(),
        phoneNumber: phone,
        swappedAt: new Date(Date.now() - 60_000).toISOString(),
        changeType: 'sim_change',
      });
    const decided = await Promise.all(
      [removed, kept].map((id) => a.watcher.waitFor(id, (d) => d.signals.some((x) => x.code === 'sim_swap'))),
    );
    // A's transmitter records what it sent for an identity after queueing it: once both are
    // recorded, both decisions were handled.
    const redis = await storeRedis();
    try {
      const store = new SsfTransmitStore(redis, keySpace(a.config.REDIS_PREFIX));
      await pollUntil(
        async () => {
          const sent = await Promise.all(
            [removed, kept].map((id) => store.lastSent<{ sequence: number }>(id)),
          );
          return sent.every((x, i) => x !== undefined && x.sequence >= (decided[i]?.sequence ?? Infinity))
            ? true
            : undefined;
        },
        15_000,
        () => "A's transmitter handled both decisions",
      );
      const waiting = (await store.peek(streamId, 100)).sets.map((x) => {
        const payload = JSON.parse(Buffer.from(x.token.split('.')[1] as string, 'base64url').toString()) as {
          sub_id: { sub: string };
        };
        return payload.sub_id.sub;
      });
      assert.ok(waiting.includes(kept), 'the kept subject is queued (the check can see SETs)');
      assert.ok(!waiting.includes(removed), 'nothing about the removed subject');
    } finally {
      redis.disconnect();
      assert.equal((await cli(['status', 'a', streamId, 'enabled'])).code, 0);
    }
  });
});
