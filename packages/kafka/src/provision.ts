import type { TopicNames, TopicRole } from '@assurance/schemas';
import { BASE_TOPICS, INTERNAL_TOPIC_CONFIGS, TOPICS } from '@assurance/schemas';
import type { RegistryCodec } from './codec.ts';
import type { AdminPort, TopicSpec } from './types.ts';

export interface ProvisionResult {
  readonly topics: number;
  readonly created: string[];
  readonly subjects: Record<string, number>;
}

/**
 * Creates every v1 topic with its partitions and configs (catalog in schemas/src/topics.ts), the
 * internal identity-keyed topic, and registers each value schema under `<topic>-value` with
 * BACKWARD compatibility. Idempotent: run by `stack:up` and by every engine at start.
 *
 * Replication is the cluster's unless given: its `default.replication.factor` and
 * `min.insync.replicas`, which its operator set for its size (the local cluster: 3 and 2; the single
 * broker: 1 and 1). Not the count of brokers alive now: an engine that starts while two of three
 * are down would create unreplicated topics. A factor given explicitly brings `min.insync.replicas`
 * min(2, factor) with it, at creation only: replication of an existing topic is never lowered by a
 * start.
 */
export async function provision(args: {
  admin: AdminPort;
  codec: RegistryCodec;
  topics: TopicNames;
  internalPartitions: number;
  replicationFactor?: number;
}): Promise<ProvisionResult> {
  const rf = args.replicationFactor;
  const replication =
    rf === undefined
      ? {}
      : {
          replicationFactor: rf,
          createConfigs: { 'min.insync.replicas': String(Math.min(2, rf)) },
        };
  const specs: TopicSpec[] = [];
  const subjects: Array<{ subject: string; avro: object }> = [];
  for (const role of Object.keys(BASE_TOPICS) as TopicRole[]) {
    const name = args.topics[role];
    if (role === 'identityEvents') {
      specs.push({
        name,
        partitions: args.internalPartitions,
        ...replication,
        configs: INTERNAL_TOPIC_CONFIGS,
      });
      continue;
    }
    const entry = TOPICS[BASE_TOPICS[role]];
    specs.push({
      name,
      partitions: entry.partitions,
      ...replication,
      configs: entry.configs,
    });
    if (entry.avro) subjects.push({ subject: `${name}-value`, avro: entry.avro as object });
  }
  const { created } = await args.admin.ensureTopics(specs);
  const ids: Record<string, number> = {};
  for (const s of subjects) ids[s.subject] = await args.codec.register(s.subject, s.avro);
  return { topics: specs.length, created, subjects: ids };
}
