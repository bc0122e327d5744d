/**
 * Wire compatibility with a peer we did not write: Confluent's Python client (confluent-kafka from
 * PyPI) serializes events with its own registry Avro serializer; the pipeline must decode them
 * exactly like its own.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { envelope, startPipeline } from '../src/pipeline.ts';
import { producePython, pythonPeer } from '../src/python-peer.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
before(async () => {
  pythonPeer();
  p = await startPipeline();
});
after(() => p?.stop());

test('events serialized by confluent-kafka (Python) are decoded and decided on', async () => {
  const identityId = `py-${Date.now()}`;
  const phone = '+4915112345678';
  const mailbox = `${identityId}@Example.COM`;
  const { delivered, errors } = producePython(p.config.KAFKA_BROKERS, p.config.SCHEMA_REGISTRY_URL, [
    {
      topic: p.topics.channelBinding,
      key: identityId,
      value: {
        ...envelope(-60_000),
        identityId,
        op: 'bound',
        channel: { type: 'phone', value: '+49 151 1234 5678' },
        uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
      },
    },
    {
      topic: p.topics.channelBinding,
      key: identityId,
      value: {
        ...envelope(-60_000),
        identityId,
        op: 'bound',
        channel: { type: 'email', value: mailbox },
        uses: { authenticators: ['email_otp'], recovery: ['email_link'] },
      },
    },
    {
      topic: p.topics.simSwap,
      key: phone,
      value: {
        ...envelope(),
        phoneNumber: phone,
        swappedAt: new Date().toISOString(),
        changeType: 'esim_transfer',
        carrier: 'Py Mobile',
      },
    },
    {
      topic: p.topics.mailboxChange,
      key: mailbox.toLowerCase(),
      value: { ...envelope(), mailbox, change: 'recovery_changed' },
    },
  ]);
  assert.deepEqual(errors, []);
  assert.equal(delivered.length, 4);
  const d = await p.watcher.waitFor(identityId, (x) => x.signals.length === 2);
  assert.deepEqual(d.signals.map((s) => s.code).sort(), ['mailbox_tampered', 'sim_swap']);
  assert.equal(d.signals.find((s) => s.code === 'sim_swap')?.attributes.changeType, 'esim_transfer');
  assert.equal(p.dlq.messages.length, 0, 'nothing dead-lettered');
});
