import { createLogger, KafkaSecurityEnv, PipelineEnv } from '@assurance/core';
import {
  createAdmin,
  createKafka,
  kafkaSecurity,
  parseBrokers,
  provision,
  RegistryCodec,
} from '@assurance/kafka';
import { topicNames } from '@assurance/schemas';
import { StackProblem } from './problems.ts';
import type { StackEndpoints } from './stack.ts';

const TopicSettings = PipelineEnv.pick({ TOPIC_NAMESPACE: true, INTERNAL_PARTITIONS: true }).and(
  KafkaSecurityEnv,
);

/**
 * Creates the topics and registers the schemas an engine with this environment would (its
 * TOPIC_NAMESPACE and INTERNAL_PARTITIONS, read by the schema every process shares, so the two
 * never disagree), as every engine also does at start. Used by `stack:up` and `npm run provision`.
 */
export async function provisionAll(
  e: Pick<StackEndpoints, 'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL'>,
  log: (m: string) => void,
  env: NodeJS.ProcessEnv = process.env,
) {
  const settings = TopicSettings.safeParse(env);
  if (!settings.success) {
    const lines = settings.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new StackProblem(`invalid provisioning settings:\n${lines.join('\n')}`);
  }
  const { TOPIC_NAMESPACE: namespace, INTERNAL_PARTITIONS: internalPartitions } = settings.data;
  // kafkajs's retries would print as JSON lines; what finally fails is thrown and worded below.
  const logger = createLogger('stack', 'error');
  const kafka = createKafka({
    brokers: parseBrokers(e.KAFKA_BROKERS),
    clientId: 'stack-provision',
    logger,
    ...kafkaSecurity(settings.data),
  });
  const admin = await createAdmin(kafka).catch((err: unknown) => {
    throw unreachable(err, e) ?? err;
  });
  try {
    const r = await provision({
      admin,
      codec: new RegistryCodec({ url: e.SCHEMA_REGISTRY_URL }),
      topics: topicNames(namespace),
      internalPartitions,
    });
    if (r.created.length > 0) log(`created topics: ${r.created.join(', ')}`);
    return { topics: r.topics, created: r.created.length, subjects: Object.keys(r.subjects).length };
  } catch (err) {
    throw unreachable(err, e) ?? err;
  } finally {
    await admin.close();
  }
}

/**
 * A server that refused or failed the work is the environment's problem (a wrong KAFKA_BROKERS or
 * SCHEMA_REGISTRY_URL, a server down), so it is worded as one; anything else stays a bug.
 */
function unreachable(
  err: unknown,
  e: Pick<StackEndpoints, 'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL'>,
): StackProblem | undefined {
  if (!(err instanceof Error)) return undefined;
  const cause =
    err.cause instanceof Error && err.cause.message !== err.message ? `: ${err.cause.message}` : '';
  const check = '  Check the address (npm run stack:status shows the local stack) and that the server runs.';
  if (err.name.startsWith('KafkaJS'))
    return new StackProblem(
      `Kafka at ${e.KAFKA_BROKERS} (KAFKA_BROKERS) failed: ${err.message}${cause}\n${check}`,
    );
  // @kafkajs/confluent-schema-registry's error for any failed call, a refused connection included.
  if (err.name === 'ResponseError')
    return new StackProblem(
      `the schema registry at ${e.SCHEMA_REGISTRY_URL} (SCHEMA_REGISTRY_URL) failed: ${err.message}\n${check}`,
    );
  return undefined;
}
