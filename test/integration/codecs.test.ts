/**
 * Every compression codec Kafka producers use, from producers we did not write: librdkafka (through
 * confluent-kafka, with its own Avro serializer) and Kafka's own Java client (kafka-console-producer,
 * from the jars the stack already runs). A SIM swap sent in each codec must be decided. And the
 * engine itself produces in a configured codec that readers decode.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { Compression } from '@assurance/kafka';
import { javaBinary, resolveLayout } from '@assurance/stack';
import { bindSmsPhone, envelope, startPipeline } from '../src/pipeline.ts';
import { producePython, pythonPeer } from '../src/python-peer.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;

let p: Pipeline;
before(async () => {
  pythonPeer();
  p = await startPipeline();
});
after(() => p?.stop());

const bindPhone = (identityId: string, phone: string) => bindSmsPhone(p, identityId, phone);

const swap = (phone: string, changeType: string) => ({
  ...envelope(),
  phoneNumber: phone,
  swappedAt: new Date(Date.now() - 60_000).toISOString(),
  changeType,
});

/** kafka-console-producer (Kafka's Java client), one line per record as `key<TAB>value`. */
function produceJava(topic: string, compression: string, lines: Array<[string, string]>): void {
  const lib = resolveLayout().kafka.lib;
  const r = spawnSync(
    javaBinary(),
    [
      '-cp',
      `${lib}/*`,
      '-Dlog4j2.level=warn',
      'org.apache.kafka.tools.ConsoleProducer',
      '--bootstrap-server',
      p.config.KAFKA_BROKERS,
      '--topic',
      topic,
      '--compression-codec',
      compression,
      '--property',
      'parse.key=true',
      '--property',
      'key.separator=\t',
    ],
    { input: lines.map(([k, v]) => `${k}\t${v}`).join('\n'), encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, `kafka-console-producer failed: ${r.stdout}${r.stderr}`);
}

describe('foreign producers, every codec', () => {
  for (const codec of CODECS) {
    test(`${codec}: librdkafka (confluent-kafka, Avro) and the Java client (JSON) are decided on`, async () => {
      const tag = `${codec}-${Date.now().toString(36)}`;
      const viaPython = { id: `py-${tag}`, phone: `+4915112${String(Date.now()).slice(-6)}` };
      const viaJava = { id: `jv-${tag}`, phone: `+4915113${String(Date.now()).slice(-6)}` };
      await Promise.all([bindPhone(viaPython.id, viaPython.phone), bindPhone(viaJava.id, viaJava.phone)]);

      const { errors } = producePython(p.config.KAFKA_BROKERS, p.config.SCHEMA_REGISTRY_URL, [
        {
          topic: p.topics.simSwap,
          key: viaPython.phone,
          value: swap(viaPython.phone, 'port_out'),
          compression: codec,
        },
      ]);
      assert.deepEqual(errors, []);
      produceJava(p.topics.simSwap, codec, [
        [viaJava.phone, JSON.stringify(swap(viaJava.phone, 'sim_change'))],
      ]);

      for (const { id } of [viaPython, viaJava]) {
        const d = await p.watcher.waitFor(id, (x) => x.signals.some((s) => s.code === 'sim_swap'));
        assert.ok(!d.tiers.medium.acceptableAuthenticators.includes('sms_otp'));
      }
      assert.equal(p.dlq.messages.length, 0, 'nothing dead-lettered');
    });
  }
});

describe('the engine produces in the codec it is told to', () => {
  for (const codec of ['lz4', 'zstd'] as const satisfies readonly Compression[]) {
    test(`PRODUCE_COMPRESSION=${codec}: decisions and audit records decode for their readers`, async () => {
      const q = await startPipeline({ PRODUCE_COMPRESSION: codec });
      try {
        const id = `out-${codec}-${Date.now().toString(36)}`;
        await q.producer.send(q.topics.channelBinding, id, {
          ...envelope(),
          identityId: id,
          op: 'bound',
          channel: { type: 'device', value: `d-${id}` },
          uses: { authenticators: ['security_key'], recovery: [] },
        });
        const d = await q.watcher.waitFor(id, () => true);
        assert.deepEqual(d.tiers.critical.enrolledAcceptable, ['security_key']);
      } finally {
        await q.stop();
      }
    });
  }
});
