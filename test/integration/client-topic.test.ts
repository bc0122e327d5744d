import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import {
  type AssuranceClient,
  AssuranceClientError,
  createAssuranceClient,
  type TopicClientOptions,
  type ViewEvent,
} from '@assurance/client';
import { createLogger } from '@assurance/core';
import { createAdmin, createKafka, createProducer, type ProducerPort, parseBrokers } from '@assurance/kafka';
import { evaluate, loadPolicyFile } from '@assurance/policy';
import {
  type Decision,
  DecisionSigner,
  generateSigningKey,
  SIGNATURE_HEADER,
  TOPICS,
} from '@assurance/schemas';
import { decisionFor, takeover } from '../../packages/client/src/test-support.ts';
import { endpoints, uniqueName } from '../src/harness.ts';
import {
  envelope,
  pushOnOldAndNewDevice,
  startPipeline,
  TEST_PUBLIC_KEY,
  TEST_SIGNING_KEY,
} from '../src/pipeline.ts';

/**
 * Topic mode on the real stack: a client's local view of the compacted decisions topic, fed by a
 * real engine (SIM swap story, bootstrap, staleness) or by a raw producer (sequence ordering,
 * unreadable values), each on its own topic namespace.
 */

const policy = loadPolicyFile();
const logger = createLogger('test-client', process.env.TEST_LOG_LEVEL ?? 'warn');
const justNow = () => new Date(Date.now() - 1000).toISOString();

/** A topic-mode client whose view events can be awaited (listening, never sleeping). */
function startClient(options: Omit<TopicClientOptions, 'mode' | 'policy' | 'logger' | 'onViewEvent'>) {
  const events: ViewEvent[] = [];
  const emitter = new EventEmitter();
  const client = createAssuranceClient({
    mode: 'topic',
    policy,
    logger,
    // The engines' key (test/src/pipeline.ts): only what it signed is answered from.
    decisionKeys: [TEST_PUBLIC_KEY],
    ...options,
    onViewEvent: (e) => {
      events.push(e);
      emitter.emit('event', e);
    },
  });
  /** The first view event (already seen, or still to come) that matches. */
  async function waitFor(match: (e: ViewEvent) => boolean, timeoutMs = 30_000): Promise<ViewEvent> {
    const seen = events.find(match);
    if (seen) return seen;
    // A listener that tests every event as it is emitted: one batch emits several synchronously.
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        emitter.off('event', listener);
        reject(new Error(`no matching view event within ${timeoutMs} ms`));
      }, timeoutMs);
      function listener(e: ViewEvent) {
        if (!match(e)) return;
        clearTimeout(timer);
        emitter.off('event', listener);
        resolve(e);
      }
      emitter.on('event', listener);
    });
  }
  /** Resolves once the view holds `identityId` at `sequence` or later. */
  const applied = (identityId: string, sequence: number) =>
    waitFor((e) => e.kind === 'applied' && e.identityId === identityId && e.sequence >= sequence);
  return { client, events, waitFor, applied };
}

describe('topic mode against a real pipeline', () => {
  type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
  let p: Pipeline;
  let live: ReturnType<typeof startClient>;
  const identityId = uniqueName('alice');
  let swapped: Decision;

  before(async () => {
    p = await startPipeline();
    live = startClient({
      brokers: p.config.KAFKA_BROKERS,
      namespace: p.config.TOPIC_NAMESPACE,
      engineGroupId: p.config.ENGINE_GROUP_ID,
      channelHashSecret: p.config.CHANNEL_HASH_SECRET,
    });
    await live.client.ready({ timeoutMs: 30_000 });
  });
  after(async () => {
    await live?.client.close();
    await p?.stop();
  });

  it('an identity with no decision gets the policy baseline, sequence 0', async () => {
    const a = await live.client.requirementFor(uniqueName('nobody'), 'payout.change');
    assert.equal(a.degraded, false);
    assert.equal(a.sequence, 0);
    assert.equal(a.source, 'topic');
    assert.equal(a.tier, 'high');
    const baseline = evaluate(
      policy,
      { identityId: 'x', tenantId: null, bindingsKnown: false, bindings: [], signals: [] },
      new Date(),
    );
    assert.deepEqual(a.requirement, baseline.tiers.high);
    assert.ok(!a.requirement.acceptableAuthenticators.includes('sms_otp'));
  });

  it('after a SIM swap on a bound phone, payout.change excludes sms_otp for sim_swap once the view catches up', async () => {
    const phone = '+33 6 12 34 56 78';
    await p.producer.send(p.topics.channelBinding, identityId, {
      ...envelope(-120_000),
      identityId,
      op: 'bound',
      channel: { type: 'device', value: 'yubikey-1' },
      uses: { authenticators: ['security_key'], recovery: [] },
    });
    await p.producer.send(p.topics.channelBinding, identityId, {
      ...envelope(-60_000),
      identityId,
      op: 'bound',
      channel: { type: 'phone', value: phone },
      uses: { authenticators: ['sms_otp', 'voice_otp'], recovery: ['sms_code'] },
    });
    // Both bindings decided (same key, same partition, in order) before the swap: no race between topics.
    await p.watcher.waitFor(identityId, () => p.watcher.forIdentity(identityId).length >= 2);
    await p.producer.send(p.topics.simSwap, '+33612345678', {
      ...envelope(),
      phoneNumber: phone,
      swappedAt: new Date(Date.now() - 3_600_000).toISOString(),
      changeType: 'port_out',
    });
    swapped = await p.watcher.waitFor(identityId, (d) => d.signals.some((s) => s.code === 'sim_swap'));
    await live.applied(identityId, swapped.sequence);

    const a = await live.client.requirementFor(identityId, 'payout.change');
    assert.equal(a.degraded, false);
    assert.ok(a.sequence >= swapped.sequence);
    assert.equal(a.tier, 'high');
    const held = await p.watcher.waitFor(identityId, (d) => d.sequence === a.sequence);
    assert.deepEqual(a.requirement, held.tiers.high);
    const sms = a.requirement.excludedAuthenticators.find((e) => e.authenticator === 'sms_otp');
    assert.ok(
      sms?.reasons.some((r) => r.startsWith('sim_swap.')),
      `sms_otp excluded for the swap: ${sms?.reasons}`,
    );
    assert.ok(!a.requirement.acceptableAuthenticators.includes('sms_otp'));
    assert.equal(a.requirement.requirePhishingResistant, true);

    const bySms = await live.client.verify(identityId, 'payout.change', {
      authenticator: 'sms_otp',
      authenticatedAt: justNow(),
    });
    assert.equal(bySms.satisfied, false);
    assert.ok(bySms.missing.includes('authenticator_not_acceptable'));
    const byKey = await live.client.verify(identityId, 'payout.change', {
      authenticator: 'security_key',
      authenticatedAt: justNow(),
    });
    assert.equal(byKey.satisfied, true, `missing: ${byKey.missing}`);
  });

  it('verify hashes the device the user completed push on and judges it against the bindings push still counts on', async () => {
    const id = uniqueName('erin');
    const decided = await pushOnOldAndNewDevice(p, id);
    await live.applied(id, decided.sequence);
    const at = justNow();
    const on = (value: string) =>
      live.client.verify(id, 'payout.change', {
        authenticator: 'push',
        channel: { type: 'device', value },
        authenticatedAt: at,
      });
    const onOld = await on('phone-old');
    assert.equal(onOld.satisfied, true, `missing: ${onOld.missing}`);
    assert.deepEqual((await on('phone-new')).missing, ['channel_not_acceptable']);
    const unnamed = await live.client.verify(id, 'payout.change', {
      authenticator: 'push',
      authenticatedAt: at,
    });
    assert.deepEqual(unnamed.missing, ['channel_required']);
  });

  it('a client started after the decisions exist is caught up when ready() resolves', async () => {
    assert.ok(swapped, 'runs after the SIM swap test');
    const before = await live.client.requirementFor(identityId, 'payout.change');
    const late = startClient({
      brokers: p.config.KAFKA_BROKERS,
      namespace: p.config.TOPIC_NAMESPACE,
      engineGroupId: p.config.ENGINE_GROUP_ID,
    });
    try {
      const early = await late.client.requirementFor(identityId, 'payout.change');
      assert.equal(early.degraded, true, 'before its first read the view answers degraded');
      assert.deepEqual(early.degradedReasons, ['not_ready']);
      assert.equal(early.requirement.outcome, 'hold');

      await late.client.ready({ timeoutMs: 30_000 });
      // No waiting for a particular message: ready means read up to the high watermark.
      const a = await late.client.requirementFor(identityId, 'payout.change');
      assert.equal(a.degraded, false, `${a.degradedReasons}`);
      assert.ok(a.sequence >= before.sequence && before.sequence >= swapped.sequence);
      const held = await p.watcher.waitFor(identityId, (d) => d.sequence === a.sequence);
      assert.deepEqual(a.requirement, held.tiers.high);
      assert.ok(late.client.health().identities !== null && (late.client.health().identities ?? 0) >= 1);
    } finally {
      await late.client.close();
    }
  });

  it('a view not caught up for longer than maxStalenessMs answers degraded, and recovers when it catches up', async () => {
    // The client's own clock, moved forward instead of waiting for real time to pass.
    let skewMs = 0;
    const slow = startClient({
      brokers: p.config.KAFKA_BROKERS,
      namespace: p.config.TOPIC_NAMESPACE,
      engineGroupId: p.config.ENGINE_GROUP_ID,
      maxStalenessMs: 300,
      // Only batches reaching the high watermark trigger a lag check here.
      lagCheckIntervalMs: 3_600_000,
      now: () => new Date(Date.now() + skewMs),
    });
    try {
      await slow.client.ready({ timeoutMs: 30_000 });
      skewMs = 600;
      const stale = await slow.client.requirementFor(identityId, 'payout.change');
      assert.equal(stale.degraded, true);
      assert.deepEqual(stale.degradedReasons, ['stale_view']);
      assert.equal(stale.requirement.outcome, 'hold');
      assert.deepEqual(stale.requirement.reasons, ['policy.fail_closed']);
      assert.equal(slow.client.health().degraded, true);
      const v = await slow.client.verify(identityId, 'payout.change', {
        authenticator: 'security_key',
        authenticatedAt: justNow(),
      });
      assert.equal(v.satisfied, false);
      assert.equal(v.missing[0], 'degraded');

      // A new decision arrives (a new identity's first); the batch ends at the high watermark, and
      // the lag check it triggers makes the view fresh again.
      const since = slow.events.length;
      const sentAt = Date.now() + skewMs;
      const newcomer = uniqueName('frank');
      await p.producer.send(p.topics.channelBinding, newcomer, {
        ...envelope(),
        identityId: newcomer,
        op: 'bound',
        channel: { type: 'email', value: `${newcomer}@example.com` },
        uses: { authenticators: ['email_otp'], recovery: ['email_link'] },
      });
      await slow.applied(newcomer, (await p.watcher.waitFor(newcomer, () => true)).sequence);
      // A check that found another partition still behind emits an older instant: wait for one
      // that proves the view complete past the newcomer's event.
      await slow.waitFor(
        (e) => e.kind === 'caught_up' && e.asOfMs >= sentAt && slow.events.indexOf(e) >= since,
      );
      const fresh = await slow.client.requirementFor(identityId, 'payout.change');
      assert.equal(fresh.degraded, false, `${fresh.degradedReasons}`);
      assert.ok(fresh.sequence >= swapped.sequence);
      const newest = p.watcher.forIdentity(newcomer).at(-1);
      assert.equal((await slow.client.requirementFor(newcomer, 'payout.change')).sequence, newest?.sequence);
    } finally {
      await slow.client.close();
    }
    await assert.rejects(
      slow.client.requirementFor(identityId, 'payout.change'),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'client_closed',
    );
  });
});

describe('topic mode against a raw decisions topic', () => {
  let brokers: string;
  let topic: string;
  let producer: ProducerPort;
  const clients: AssuranceClient[] = [];
  const kafka = () => createKafka({ brokers: parseBrokers(brokers), clientId: 'test-client-raw', logger });

  /** A valid decision at `sequence`, evaluated by the real policy (a takeover signal holds high). */
  const decision = (identityId: string, sequence: number, withTakeover: boolean): Decision =>
    decisionFor(identityId, sequence, withTakeover ? [takeover()] : []);

  const engineKey = new DecisionSigner(TEST_SIGNING_KEY);
  /** Sends as an engine would (signed with the engines' key) unless `signer` says otherwise. */
  const send = (
    key: string,
    value: Decision | string | null,
    sequence?: number,
    signer: DecisionSigner | null = engineKey,
  ) => {
    const text = value === null || typeof value === 'string' ? value : JSON.stringify(value);
    const headers: Record<string, string> = {};
    if (sequence !== undefined) headers['x-sequence'] = String(sequence);
    if (text !== null && signer !== null) headers[SIGNATURE_HEADER] = signer.sign(text, sequence);
    return producer.send([{ topic, key, value: text, headers }]);
  };

  before(async () => {
    brokers = (await endpoints()).KAFKA_BROKERS;
    topic = `${uniqueName('t')}.assurance.decisions.v1`;
    const admin = await createAdmin(kafka());
    const spec = TOPICS['assurance.decisions.v1'];
    await admin.ensureTopics([{ name: topic, partitions: spec.partitions, configs: spec.configs }]);
    await admin.close();
    producer = await createProducer(kafka());
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await producer?.close();
    const admin = await createAdmin(kafka());
    await admin.deleteTopics([topic]).catch(() => {});
    await admin.close();
  });

  it('a lower or equal sequence after a higher one is ignored', async () => {
    const c = startClient({ brokers, topic, watchEngine: false });
    clients.push(c.client);
    await c.client.ready({ timeoutMs: 30_000 });
    const id = uniqueName('bob');
    await send(id, decision(id, 5, true), 5);
    await c.applied(id, 5);
    await send(id, decision(id, 3, false), 3); // the engine republishing an old decision after a crash
    await send(id, decision(id, 5, false), 5); // a duplicate of the sequence already held
    await c.waitFor((e) => e.kind === 'ignored_stale' && e.identityId === id && e.sequence === 5);
    assert.ok(c.events.some((e) => e.kind === 'ignored_stale' && e.identityId === id && e.sequence === 3));

    const a = await c.client.requirementFor(id, 'payout.change');
    assert.equal(a.degraded, false);
    assert.equal(a.sequence, 5);
    assert.equal(
      a.requirement.outcome,
      'hold',
      'still the takeover decision, not the lower or equal republish',
    );

    // The same log read from the beginning by a new client ends at the same place.
    const fresh = startClient({ brokers, topic, watchEngine: false });
    clients.push(fresh.client);
    await fresh.client.ready({ timeoutMs: 30_000 });
    const b = await fresh.client.requirementFor(id, 'payout.change');
    assert.equal(b.sequence, 5);
    assert.equal(b.requirement.outcome, 'hold');
  });

  it('an unreadable newer message fails that identity closed until a newer valid decision', async () => {
    const c = startClient({ brokers, topic, watchEngine: false });
    clients.push(c.client);
    await c.client.ready({ timeoutMs: 30_000 });
    const id = uniqueName('carol');
    await send(id, decision(id, 1, false), 1);
    await c.applied(id, 1);
    await send(id, '{"identityId": "truncated', 2);
    await c.waitFor((e) => e.kind === 'rejected' && e.identityId === id);
    const bad = await c.client.requirementFor(id, 'payout.change');
    assert.equal(bad.degraded, true);
    assert.deepEqual(bad.degradedReasons, ['invalid_decision']);
    assert.equal(bad.requirement.outcome, 'hold');
    const other = await c.client.requirementFor(uniqueName('dave'), 'payout.change');
    assert.equal(other.degraded, false, 'other identities are not affected');

    await send(id, decision(id, 3, false), 3);
    await c.applied(id, 3);
    const good = await c.client.requirementFor(id, 'payout.change');
    assert.equal(good.degraded, false);
    assert.equal(good.sequence, 3);
  });

  it('a forged decision changes nothing a client answers leniently: each one fails its identity closed', async () => {
    const c = startClient({ brokers, topic, watchEngine: false });
    clients.push(c.client);
    await c.client.ready({ timeoutMs: 30_000 });
    const id = uniqueName('mallory-target');
    await send(id, decision(id, 5, true), 5);
    await c.applied(id, 5);
    const attacker = new DecisionSigner(generateSigningKey());
    const impostor = new DecisionSigner({ ...generateSigningKey(), kid: engineKey.kid });
    const lenient = (seq: number) => decision(id, seq, false);
    const forgeries: Array<[string, () => Promise<unknown>]> = [
      ['unknown_key', () => send(id, lenient(6), 6, attacker)],
      ['bad_signature', () => send(id, lenient(7), 7, impostor)],
      ['unsigned', () => send(id, lenient(8), 8, null)],
      // A record the engines signed, its value changed on the way.
      [
        'bad_signature',
        async () => {
          const text = JSON.stringify(lenient(9));
          await producer.send([
            {
              topic,
              key: id,
              value: text.replace('"sequence":9', '"sequence":10'),
              headers: { 'x-sequence': '10', [SIGNATURE_HEADER]: engineKey.sign(text, 9) },
            },
          ]);
        },
      ],
      // Signed by the engines' key but dated past any clock: it would outrank every real decision.
      ['sequence_ahead', () => send(id, lenient(2 ** 41 + 11), 2 ** 41 + 11)],
      ['tombstone', () => send(id, null)],
    ];
    for (const [reason, forge] of forgeries) {
      const since = c.events.length;
      const before = c.client.health().rejected[reason] ?? 0;
      await forge();
      // Read (its signature is checked when it is looked up, or refused at once if it cannot be held).
      await c.waitFor(
        (e) =>
          (e.kind === 'applied' || e.kind === 'rejected') &&
          e.identityId === id &&
          c.events.indexOf(e) >= since,
      );
      const a = await c.client.requirementFor(id, 'payout.change');
      assert.equal(a.degraded, true, reason);
      assert.equal(a.requirement.outcome, 'hold', `${reason}: never the forged lenient requirement`);
      assert.equal(c.client.health().rejected[reason], before + 1, `counted as ${reason}`);
    }
    // The engines' next real decision is answered again.
    await send(id, decision(id, 12, false), 12);
    await c.applied(id, 12);
    const back = await c.client.requirementFor(id, 'payout.change');
    assert.equal(back.degraded, false);
    assert.equal(back.sequence, 12);
  });

  it('a view at its memory bound answers an identity it does not hold degraded, never with the baseline', async () => {
    const first = uniqueName('bounded');
    await send(first, decision(first, 1, true), 1);
    const c = startClient({ brokers, topic, watchEngine: false, maxIdentities: 1 });
    clients.push(c.client);
    await c.client.ready({ timeoutMs: 30_000 });
    const full = await c.client.requirementFor(uniqueName('never-decided'), 'payout.change');
    assert.equal(full.degraded, true);
    assert.deepEqual(full.degradedReasons, ['view_full']);
    assert.equal(full.requirement.outcome, 'hold');
    assert.ok((c.client.health().rejected.view_full ?? 0) >= 1);
  });

  it("a topic client refuses to start without the engines' keys unless told to read unverified", () => {
    assert.throws(
      () => createAssuranceClient({ mode: 'topic', brokers, topic, policy }),
      (e: unknown) =>
        e instanceof AssuranceClientError && e.code === 'invalid_options' && /decisionKeys/.test(e.message),
    );
  });

  it('a client on a topic that does not exist never becomes ready and answers degraded', async () => {
    const c = startClient({ brokers, topic: `${uniqueName('t')}.missing.decisions.v1`, watchEngine: false });
    clients.push(c.client);
    const a = await c.client.requirementFor('erin', 'mfa.reset');
    assert.equal(a.degraded, true);
    assert.deepEqual(a.degradedReasons, ['not_ready']);
    assert.equal(a.tier, 'critical');
    await assert.rejects(
      c.client.ready({ timeoutMs: 1500 }),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'bootstrap_failed',
    );
  });
});
