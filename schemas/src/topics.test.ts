import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENVELOPE_SHAPE } from './envelope.ts';
import {
  DLQ_HEADERS,
  INPUT_TOPICS,
  isTopicName,
  TOPIC_NAMES,
  TOPICS,
  topicByName,
  VALUE_TOPICS,
} from './topics.ts';

const DAY_MS = 86_400_000;

describe('topic catalog', () => {
  it('holds the ten v1 topics of docs/contract.md', () => {
    assert.deepEqual(TOPIC_NAMES, [
      'identity.login.v1',
      'identity.device.v1',
      'identity.sim-swap.v1',
      'identity.mailbox-change.v1',
      'identity.channel-binding.v1',
      'identity.compromise-signal.v1',
      'assurance.decisions.v1',
      'assurance.audit.v1',
      'assurance.shadow.v1',
      'assurance.dlq.v1',
    ]);
    assert.equal(INPUT_TOPICS.length, 6);
    assert.equal(VALUE_TOPICS.length, 8);
  });

  it('keys entries by their own name, with legal Kafka names and TopicNameStrategy subjects', () => {
    for (const name of TOPIC_NAMES) {
      const t = TOPICS[name];
      assert.equal(t.name, name);
      assert.match(name, /^[a-z0-9._-]{1,249}$/);
      assert.equal(t.subject, t.value === null ? null : `${name}-value`);
      assert.equal(t.avro === null, t.value === null);
    }
  });

  it('provisions partitions and configs as specified', () => {
    for (const name of INPUT_TOPICS) {
      assert.equal(TOPICS[name].kind, 'input');
      assert.equal(TOPICS[name].partitions, 6);
      assert.deepEqual(TOPICS[name].configs, {
        'cleanup.policy': 'delete',
        'retention.ms': String(7 * DAY_MS),
      });
    }
    assert.deepEqual(TOPICS['assurance.decisions.v1'].configs, {
      'cleanup.policy': 'compact',
      'min.compaction.lag.ms': '60000',
      'segment.ms': String(DAY_MS),
    });
    assert.equal(TOPICS['assurance.audit.v1'].configs['retention.ms'], String(400 * DAY_MS));
    assert.equal(TOPICS['assurance.audit.v1'].configs['cleanup.policy'], 'delete');
    assert.equal(TOPICS['assurance.dlq.v1'].configs['retention.ms'], String(30 * DAY_MS));
    assert.deepEqual(
      ['assurance.decisions.v1', 'assurance.audit.v1', 'assurance.dlq.v1'].map(
        (n) => topicByName(n)?.partitions,
      ),
      [6, 6, 3],
    );
  });

  it('puts the envelope first in every input Avro schema', () => {
    const envelope = Object.keys(ENVELOPE_SHAPE);
    for (const name of INPUT_TOPICS) {
      assert.deepEqual(
        TOPICS[name].avro.fields.slice(0, envelope.length).map((f) => f.name),
        envelope,
      );
    }
  });

  it('looks topics up by name', () => {
    assert.equal(topicByName('identity.login.v1')?.key, 'identityId');
    assert.equal(topicByName('identity.login.v2'), undefined);
    assert.equal(topicByName('__proto__'), undefined);
    assert.ok(isTopicName('assurance.dlq.v1'));
  });

  it('names the DLQ headers', () => {
    assert.deepEqual(Object.values(DLQ_HEADERS), [
      'x-error-class',
      'x-error-message',
      'x-source-topic',
      'x-source-partition',
      'x-source-offset',
      'x-source-timestamp',
      'x-truncated',
      'x-original-bytes',
      'x-original-sha256',
    ]);
  });
});
