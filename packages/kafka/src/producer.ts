import { AssuranceError } from '@assurance/core';
import type { Kafka, Producer } from 'kafkajs';
import { CompressionTypes, Partitioners } from 'kafkajs';
import type { OutboundMessage, ProducerPort } from './types.ts';

/**
 * Idempotent producer, acks from all in-sync replicas. Messages of one `send` are grouped per
 * topic into a single request, so a batch of decisions costs one round trip.
 */
export async function createProducer(kafka: Kafka): Promise<ProducerPort> {
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 5,
    // Murmur2 like the Java client, so other producers keyed the same way land on the same partition.
    createPartitioner: Partitioners.DefaultPartitioner,
    // Idempotence only holds with unbounded retries: a send gives up only when the producer closes.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
  });
  await producer.connect();
  return {
    async send(messages: readonly OutboundMessage[]) {
      if (messages.length === 0) return;
      const byTopic = new Map<string, OutboundMessage[]>();
      for (const m of messages) {
        const list = byTopic.get(m.topic) ?? [];
        list.push(m);
        byTopic.set(m.topic, list);
      }
      try {
        await producer.sendBatch({
          acks: -1,
          compression: CompressionTypes.None,
          topicMessages: [...byTopic].map(([topic, list]) => ({
            topic,
            messages: list.map((m) => ({
              key: m.key,
              value: m.value,
              ...(m.headers ? { headers: { ...m.headers } } : {}),
            })),
          })),
        });
      } catch (err) {
        throw new AssuranceError('kafka_unavailable', `produce failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
    close: () => producer.disconnect(),
  };
}
