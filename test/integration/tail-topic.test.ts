/**
 * tailTopic (packages/kafka/src/tail-topic.ts) on the real broker: the console's view of recent
 * audit records and dead letters rests on it reading back exactly the last records of each
 * partition, then every new one, once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { AdminPort, InboundMessage, KafkaClient, ProducerPort } from '@assurance/kafka';
import { createAdmin, createKafka, createProducer, parseBrokers, tailTopic } from '@assurance/kafka';
import { endpoints, uniqueName } from '../src/harness.ts';
import { pollUntil } from '../src/wait.ts';

const logger = createLogger('test', 'error');
let kafka: KafkaClient;
let admin: AdminPort;
let producer: ProducerPort;
const topic = uniqueName('tail');

before(async () => {
  kafka = createKafka({
    brokers: parseBrokers((await endpoints()).KAFKA_BROKERS),
    clientId: 'tail-test',
    logger,
  });
  admin = await createAdmin(kafka);
  await admin.ensureTopics([{ name: topic, partitions: 3 }]);
  producer = await createProducer(kafka);
});
after(async () => {
  await producer.close();
  await admin.deleteTopics([topic]);
  await admin.close();
});

const send = (from: number, n: number) =>
  producer.send(
    Array.from({ length: n }, (_, i) => ({ topic, key: `k${from + i}`, value: String(from + i) })),
  );

const byPartition = (got: readonly InboundMessage[]) => {
  const out = new Map<number, string[]>();
  for (const m of got) out.set(m.partition, [...(out.get(m.partition) ?? []), m.offset]);
  return out;
};

test('the last records of each partition, then every new one, each once; lookback 0 follows only new ones', async () => {
  await send(0, 30);
  const ends = await admin.positions(uniqueName('nobody'), [topic]);
  const got: InboundMessage[] = [];
  const tail = await tailTopic(kafka, topic, (m) => got.push(...m), {
    lookback: 4,
    groupIdPrefix: 'tail-test',
    logger,
  });
  const fresh: InboundMessage[] = [];
  const onlyNew = await tailTopic(kafka, topic, (m) => fresh.push(...m), {
    lookback: 0,
    groupIdPrefix: 'tail-test',
    logger,
  });
  try {
    await tail.caughtUp;
    await onlyNew.caughtUp;
    const seen = byPartition(got);
    for (const p of ends) {
      const expected = [];
      for (let o = p.end - 4n < p.low ? p.low : p.end - 4n; o < p.end; o++) expected.push(o.toString());
      assert.deepEqual(seen.get(p.partition) ?? [], expected, `partition ${p.partition}`);
    }
    const before = got.length;
    await send(30, 6);
    await pollUntil(
      async () => (got.length >= before + 6 && fresh.length >= 6 ? true : undefined),
      30_000,
      () => `6 new records on both tails (got ${got.length - before} and ${fresh.length})`,
    );
    assert.deepEqual(
      fresh.map((m) => Number(m.value?.toString())).sort((a, b) => a - b),
      [30, 31, 32, 33, 34, 35],
    );
    for (const [partition, offsets] of byPartition(got))
      assert.equal(new Set(offsets).size, offsets.length, `partition ${partition} delivered a record twice`);
    assert.equal(tail.running, true);
  } finally {
    await Promise.all([tail.stop(), onlyNew.stop()]);
  }
  assert.equal(tail.running, false);
});
