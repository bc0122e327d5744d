import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { createAssuranceClient, type ViewEvent } from '@assurance/client';
import { createLogger } from '@assurance/core';
import { evaluate, loadPolicyFile } from '@assurance/policy';
import { toIdentityState } from '@assurance/redis';
import { AuditRecord, Decision, DecisionV2 } from '@assurance/schemas';
import { decisionFor } from '../../packages/client/src/test-support.ts';
import { uniqueName } from '../src/harness.ts';
import { envelope, startPipeline, TEST_PUBLIC_KEY, TopicCollector } from '../src/pipeline.ts';

/**
 * Decision format 2 on the real stack (docs/contract.md, decision format 2): an engine publishing
 * compact decisions, a topic client expanding them with its policy, and the migration case of an
 * identity whose v1 decision is followed by a v2 one on the same topic. The expanded requirement
 * must be exactly what evaluating the stored state gives.
 */

const policy = loadPolicyFile();
const logger = createLogger('test-v2', process.env.TEST_LOG_LEVEL ?? 'warn');

describe('decision format 2 through a real engine and a topic client', () => {
  type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
  let p: Pipeline;
  let audits: TopicCollector;
  let raw: TopicCollector;
  const events: ViewEvent[] = [];
  const emitter = new EventEmitter();
  let client: ReturnType<typeof createAssuranceClient>;

  before(async () => {
    // The default format: nothing set.
    p = await startPipeline();
    audits = await TopicCollector.start(p.config, p.logger, p.topics.audit);
    raw = await TopicCollector.start(p.config, p.logger, p.topics.decisions);
    client = createAssuranceClient({
      mode: 'topic',
      policy,
      logger,
      decisionKeys: [TEST_PUBLIC_KEY],
      brokers: p.config.KAFKA_BROKERS,
      namespace: p.config.TOPIC_NAMESPACE,
      engineGroupId: p.config.ENGINE_GROUP_ID,
      onViewEvent: (e) => {
        events.push(e);
        emitter.emit('event');
      },
    });
    await client.ready({ timeoutMs: 30_000 });
  });
  after(async () => {
    await client?.close();
    await audits?.stop();
    await raw?.stop();
    await p?.stop();
  });

  it('a v1 decision, then the engine’s v2 ones: the client expands them to what the state gives', async () => {
    const identityId = uniqueName('mia');
    // What an engine of the previous format left on the topic for this identity.
    await p.producer.send(p.topics.decisions, identityId, decisionFor(identityId, 1));
    await p.producer.send(p.topics.channelBinding, identityId, {
      ...envelope(-60_000),
      identityId,
      op: 'bound',
      channel: { type: 'phone', value: '+33 6 11 22 33 44' },
      uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
    });
    await p.producer.send(p.topics.simSwap, '+33611223344', {
      ...envelope(),
      phoneNumber: '+33 6 11 22 33 44',
      swappedAt: new Date(Date.now() - 600_000).toISOString(),
      changeType: 'port_out',
    });
    // The watcher reads either format as v1; what the topic holds is format 2.
    const swapped = await p.watcher.waitFor(identityId, (d) => d.signals.some((s) => s.code === 'sim_swap'));
    const published = await raw.waitFor(
      (m) => m.key?.toString() === identityId && m.headers['x-sequence'] === String(swapped.sequence),
    );
    const v2 = DecisionV2.parse(JSON.parse(published.value?.toString() ?? ''));
    assert.equal(v2.format, 2);
    assert.deepEqual(v2.enrolled, ['sms_otp']);
    assert.ok(JSON.stringify(v2).length < 1600, `${JSON.stringify(v2).length} bytes`);

    await waitForApplied(identityId, v2.sequence);
    const answer = await client.requirementFor(identityId, 'payout.change');
    assert.equal(answer.degraded, false, `${answer.degradedReasons}`);
    assert.equal(answer.sequence, v2.sequence);
    // Independent of both ends: the stored state, evaluated at the decision's time.
    const record = await p.engine.store.read(identityId, Date.parse(v2.computedAt));
    assert.ok(record);
    const expected = evaluate(
      policy,
      toIdentityState(record, Date.parse(v2.computedAt)),
      new Date(v2.computedAt),
    );
    assert.deepStrictEqual(answer.requirement, expected.tiers.high);
    assert.ok(!answer.requirement.acceptableAuthenticators.includes('sms_otp'));

    // The audit record carries the decision as published: format 2.
    const audit = await audits.waitFor(
      (m) => m.key?.toString() === identityId && (m.value?.toString().includes('"afterV2"') ?? false),
    );
    const record2 = AuditRecord.parse(JSON.parse(audit.value?.toString() ?? ''));
    assert.equal(record2.afterV2?.format, 2);
    assert.equal(record2.after, undefined);
  });

  /** Resolves once the view applied `identityId` at `sequence` or later: on its events, never polling. */
  async function waitForApplied(identityId: string, sequence: number): Promise<void> {
    const signal = AbortSignal.timeout(30_000);
    while (
      !events.some((e) => e.kind === 'applied' && e.identityId === identityId && e.sequence >= sequence)
    ) {
      await once(emitter, 'event', { signal });
    }
  }
});

describe('DECISION_FORMAT=v1: the switch for readers that do not read format 2 yet', () => {
  it('publishes every tier spelled out', async () => {
    const p = await startPipeline({ DECISION_FORMAT: 'v1' });
    const raw = await TopicCollector.start(p.config, p.logger, p.topics.decisions);
    try {
      const identityId = uniqueName('noa');
      await p.producer.send(p.topics.channelBinding, identityId, {
        ...envelope(),
        identityId,
        op: 'bound',
        channel: { type: 'device', value: 'key-1' },
        uses: { authenticators: ['security_key'], recovery: [] },
      });
      const m = await raw.waitFor((x) => x.key?.toString() === identityId);
      const value = JSON.parse(m.value?.toString() ?? '') as Record<string, unknown>;
      assert.equal(value.format, undefined);
      assert.ok(Decision.safeParse(value).success);
    } finally {
      await raw.stop();
      await p.stop();
    }
  });
});
