import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { OutboundMessage, ProducerPort } from '@assurance/kafka';
import { evaluate, loadPolicyFile } from '@assurance/policy';
import type { IdentityState, ShadowRecord } from '@assurance/schemas';
import { createEngineMetrics } from './metrics.ts';
import { type ShadowJob, ShadowRunner } from './shadow.ts';

const policy = loadPolicyFile();
const now = new Date('2026-11-29T12:00:00.000Z');
const state: IdentityState = {
  identityId: 'u1',
  tenantId: null,
  bindingsKnown: false,
  bindings: [],
  signals: [],
};
const job: ShadowJob = {
  state,
  now,
  live: evaluate(policy, state, now),
  sequence: 7,
  trigger: { eventId: 'e1', topic: 'identity.login.v1', occurredAt: now.toISOString() },
};

/** A producer that keeps what it is given, or refuses it. */
class Sink implements ProducerPort {
  sent: OutboundMessage[] = [];
  failing = false;
  async send(messages: readonly OutboundMessage[]): Promise<void> {
    if (this.failing) throw new Error('broker gone');
    this.sent.push(...messages);
  }
  async close(): Promise<void> {}
}

const count = async (metrics: ReturnType<typeof createEngineMetrics>, name: string) =>
  (
    await (metrics as unknown as Record<string, { get(): Promise<{ values: Array<{ value: number }> }> }>)[
      name
    ]?.get()
  )?.values.reduce((a, v) => a + v.value, 0) ?? 0;

function runner(over: Partial<ConstructorParameters<typeof ShadowRunner>[0]> = {}) {
  const producer = new Sink();
  const metrics = createEngineMetrics();
  const r = new ShadowRunner({
    shadows: new Map([['same', policy]]),
    live: policy,
    producer,
    topic: 'assurance.shadow.v1',
    metrics,
    logger: createLogger('test', 'silent'),
    ...over,
  });
  return { r, producer, metrics };
}

test('a shadow identical to the live policy reports every tier the same', async () => {
  const { r, producer } = runner();
  r.submit([job]);
  await r.idle();
  const record = JSON.parse(String(producer.sent[0]?.value)) as ShadowRecord;
  assert.equal(record.identityId, 'u1');
  assert.equal(record.sequence, 7);
  assert.deepEqual(
    record.tiers.map((t) => t.direction),
    ['same', 'same', 'same', 'same'],
  );
  assert.equal(producer.sent[0]?.key, 'u1');
});

test('a shadow that throws, runs slow, or cannot produce is counted, never thrown to the caller', async () => {
  const slowAndBroken = runner({
    evaluate: (p, s, n, onError) => {
      const until = performance.now() + 60;
      while (performance.now() < until) {}
      onError?.(new Error('candidate bug'));
      return evaluate(p, s, n);
    },
    slowMs: 50,
  });
  // submit returns at once: the evaluation happens after, off the caller's path.
  const started = performance.now();
  slowAndBroken.r.submit([job, job]);
  assert.ok(performance.now() - started < 50, 'submit waited for the shadow');
  await slowAndBroken.r.idle();
  assert.equal(await count(slowAndBroken.metrics, 'shadowErrors'), 2);
  assert.equal(await count(slowAndBroken.metrics, 'shadowSlow'), 2);
  assert.equal((JSON.parse(String(slowAndBroken.producer.sent[0]?.value)) as ShadowRecord).failed, true);

  const refused = runner();
  refused.producer.failing = true;
  refused.r.submit([job]);
  await refused.r.idle();
  assert.equal(await count(refused.metrics, 'shadowProduceFailures'), 1);
});

test('a full queue drops and counts, and never grows past its bound', async () => {
  const { r, metrics, producer } = runner({ maxQueue: 3 });
  r.submit([job, job, job, job, job]);
  await r.idle();
  assert.equal(await count(metrics, 'shadowDropped'), 2);
  assert.equal(producer.sent.length, 3);
});
