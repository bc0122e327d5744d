import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { AdminPort, ProducerPort } from '@assurance/kafka';
import { createAdmin, createConsumer, createKafka, createProducer, parseBrokers } from '@assurance/kafka';
import { endpoints, uniqueName } from '../src/harness.ts';

let admin: AdminPort;
let producer: ProducerPort;
const topic = uniqueName('port');

before(async () => {
  const kafka = createKafka({
    brokers: parseBrokers((await endpoints()).KAFKA_BROKERS),
    clientId: 'port-test',
    logger: createLogger('test', 'error'),
  });
  admin = await createAdmin(kafka);
  await admin.ensureTopics([{ name: topic, partitions: 1 }]);
  producer = await createProducer(kafka);
});
after(async () => {
  await producer.close();
  await admin.deleteTopics([topic]);
  await admin.close();
});

test('one send far above message.max.bytes for a single partition goes out in size-bounded requests', async () => {
  // 300 audit-sized records (10 KiB) to one partition: 3 MiB, three times the broker's batch limit.
  const value = 'x'.repeat(10 * 1024);
  await producer.send(Array.from({ length: 300 }, (_, i) => ({ topic, key: `k${i}`, value })));
  const [p0] = await admin.lag(uniqueName('nobody'), topic);
  assert.equal(p0?.lag, 300);
});

test('provisioning twice is a no-op the second time', async () => {
  const again = await admin.ensureTopics([{ name: topic, partitions: 1 }]);
  assert.deepEqual(again.created, []);
});

test('processed offsets are committed in the background, and stop() commits the last ones before leaving', async () => {
  const kafka = createKafka({
    brokers: parseBrokers((await endpoints()).KAFKA_BROKERS),
    clientId: 'port-commit-test',
    logger: createLogger('test', 'error'),
  });
  const own = uniqueName('commit');
  await admin.ensureTopics([{ name: own, partitions: 2 }]);
  const groupId = uniqueName('commit-group');
  try {
    await producer.send(
      Array.from({ length: 40 }, (_, i) => ({ topic: own, key: `k${i}`, value: String(i), headers: {} })),
    );
    let done = 0;
    const allDone = Promise.withResolvers<void>();
    const consumer = createConsumer(
      kafka,
      { groupId, topics: [own], fromBeginning: true, backgroundCommits: true },
      createLogger('test', 'error'),
      {
        // Called once a batch's offset is queued for commit.
        onBatchDone: ({ processed }) => {
          done += processed;
          if (done >= 40) allDone.resolve();
        },
      },
    );
    await consumer.start(async (messages) => ({ processed: messages.length }));
    await allDone.promise;
    // Whatever the background committer managed so far, stop() flushes the rest before leaving.
    await consumer.stop();
    const lag = await admin.lag(groupId, own);
    assert.equal(
      lag.reduce((s, p) => s + p.lag, 0),
      0,
      JSON.stringify(lag),
    );
  } finally {
    await admin.deleteTopics([own]);
  }
});
