/**
 * Shadow policies on the real stack: an engine with a stricter candidate beside the live policy
 * publishes, per live decision, how the candidate would move each tier to assurance.shadow.v1, and
 * its published decisions are those of an engine without shadows fed the same events (a seeded
 * random input, compared identity by identity).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLogger } from '@assurance/core';
import { digestOf } from '@assurance/engine';
import { type ShadowRecord, SIGNAL_KINDS } from '@assurance/schemas';
import fc from 'fast-check';
import { writeStricterPolicy } from '../src/harness.ts';
import { envelope, startPipeline, TopicCollector } from '../src/pipeline.ts';
import { pollUntil } from '../src/wait.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let shadowed: Pipeline;
let plain: Pipeline;
let shadows: TopicCollector;
let dir: string;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'shadow-'));
  // Stricter: no SMS or voice codes for medium actions.
  const stricter = writeStricterPolicy(dir, '1.2.0-stricter');
  [shadowed, plain] = await Promise.all([
    startPipeline({ SHADOW_POLICIES: `stricter=${stricter}` }),
    startPipeline(),
  ]);
  shadows = await TopicCollector.start(
    shadowed.config,
    createLogger('test', 'silent'),
    shadowed.topics.shadow,
  );
});

after(async () => {
  await shadows?.stop();
  await Promise.allSettled([shadowed?.stop(), plain?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('each live decision gets a shadow record: medium stricter, the other tiers the same', async () => {
  const id = `shadow-${Date.now()}`;
  await shadowed.producer.send(shadowed.topics.channelBinding, id, {
    ...envelope(-60_000),
    identityId: id,
    op: 'bound',
    channel: { type: 'phone', value: `+4915144${String(Date.now() % 100_000).padStart(5, '0')}` },
    uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
  });
  const decision = await shadowed.watcher.waitFor(id, () => true);
  const m = await shadows.waitFor((x) => x.key?.toString() === id);
  const record = JSON.parse(String(m.value)) as ShadowRecord;
  assert.equal(record.shadow, 'stricter');
  assert.equal(record.sequence, decision.sequence);
  assert.equal(record.shadowPolicyVersion, '1.2.0-stricter');
  assert.deepEqual(Object.fromEntries(record.tiers.map((t) => [t.tier, t.direction])), {
    low: 'same',
    medium: 'stricter',
    high: 'same',
    critical: 'same',
  });
  // Never on the decisions topic.
  assert.ok(shadowed.watcher.forIdentity(id).every((d) => d.policyVersion !== '1.2.0-stricter'));
});

test('property (seeded): an engine with shadows publishes the decisions an engine without them does', async () => {
  const run = Date.now().toString(36);
  const ids = Array.from({ length: 4 }, (_, i) => `shadow-eq-${run}-${i}`);
  const events = fc.sample(
    fc.record({
      who: fc.integer({ min: 0, max: ids.length - 1 }),
      op: fc.constantFrom('raise', 'raise', 'clear'),
      kind: fc.constantFrom(...SIGNAL_KINDS),
      signal: fc.integer({ min: 0, max: 2 }),
    }),
    { numRuns: 30, seed: 42 },
  );
  let n = 0;
  for (const e of events) {
    const identity = ids[e.who] as string;
    const base = {
      ...envelope(),
      eventId: `eq-${run}-${n++}`,
      signalId: `s-${e.signal}`,
      subject: { type: 'identity', value: identity },
      raisedBy: 'soc',
    };
    const value =
      e.op === 'raise'
        ? { ...base, op: 'raise', kind: e.kind, severity: 'high' }
        : { ...base, op: 'clear', kind: e.kind };
    for (const p of [shadowed, plain])
      await p.producer.send(p.topics.compromiseSignal, `identity:${identity}`, value);
  }
  // A marker per identity that always changes its decision (a new binding), sent last: once each
  // engine decided it, it had applied every earlier event of that identity (one partition, in order).
  for (const [k, id] of ids.entries()) {
    const marker = {
      ...envelope(),
      eventId: `eq-${run}-marker-${k}`,
      identityId: id,
      op: 'bound',
      channel: { type: 'email', value: `marker-${run}-${k}@example.com` },
      uses: { authenticators: ['email_otp'], recovery: [] },
    };
    for (const p of [shadowed, plain]) await p.producer.send(p.topics.channelBinding, id, marker);
  }
  for (const [k, id] of ids.entries())
    for (const p of [shadowed, plain])
      await p.watcher.waitFor(id, (d) => d.trigger.eventId === `eq-${run}-marker-${k}`);
  for (const id of ids) {
    const final = (p: Pipeline) => {
      const list = p.watcher.forIdentity(id);
      return list.length === 0 ? 'none' : digestOf(list.reduce((a, b) => (b.sequence > a.sequence ? b : a)));
    };
    // Other identities' last events may still be on their way: until both agree, or fail naming it.
    await pollUntil(
      async () => (final(shadowed) === final(plain) ? true : undefined),
      15_000,
      () => `${id}: the shadowed engine decided ${final(shadowed)}, the plain one ${final(plain)}`,
    );
    assert.equal(final(shadowed), final(plain), `${id}: the shadowed engine decided otherwise`);
  }
  assert.ok(shadows.messages.length > 0, 'the shadows ran');
});
