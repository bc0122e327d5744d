import { createLogger } from '@assurance/core';
import { provision, topicNames } from '@assurance/engine';
import { createAdmin, createKafka, parseBrokers, RegistryCodec } from '@assurance/kafka';
import type { StackEndpoints } from './stack.ts';

/** `stack:up` provisions the real (un-namespaced) v1 topics and subjects, as every engine does at start. */
export async function provisionAll(e: StackEndpoints, log: (m: string) => void) {
  const logger = createLogger('stack', 'warn');
  const kafka = createKafka({ brokers: parseBrokers(e.KAFKA_BROKERS), clientId: 'stack-provision', logger });
  const admin = await createAdmin(kafka);
  try {
    const r = await provision({
      admin,
      codec: new RegistryCodec({ url: e.SCHEMA_REGISTRY_URL }),
      topics: topicNames(''),
      internalPartitions: 6,
    });
    if (r.created.length > 0) log(`created topics: ${r.created.join(', ')}`);
    return { topics: r.topics, subjects: Object.keys(r.subjects).length };
  } finally {
    await admin.close();
  }
}
