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
 * The replication of a cluster of `brokers`: three copies where there are three brokers or more,
 * writes acknowledged by two of them (one broker may die without losing an acknowledged record or
 * refusing writes); a smaller cluster keeps a copy per broker and acknowledges on one less, never
 * below one.
 */
export function replicationFor(brokers: number): { replicationFactor: number; minInsyncReplicas: number } {
  const replicationFactor = Math.max(1, Math.min(3, brokers));
  return { replicationFactor, minInsyncReplicas: Math.min(2, replicationFactor) };
}

/**
 * Creates every v1 topic with its partitions and configs (catalog in schemas/src/topics.ts), the
 * internal identity-keyed topic, and registers each value schema under `<topic>-value` with
 * BACKWARD compatibility. Idempotent: run by `stack:up` and by every engine at start.
 *
 * The replication factor is the cluster's (`replicationFor` its live brokers) unless given, and
 * `min.insync.replicas` goes with it as a topic config: a broker default tuned for another cluster
 * size would leave topics unwritable with acks=all, or unreplicated.
 */
export async function provision(args: {
  admin: AdminPort;
  codec: RegistryCodec;
  topics: TopicNames;
  internalPartitions: number;
  replicationFactor?: number;
}): Promise<ProvisionResult> {
  const { replicationFactor, minInsyncReplicas } =
    args.replicationFactor === undefined
      ? replicationFor(await args.admin.brokerCount())
      : { replicationFactor: args.replicationFactor, minInsyncReplicas: Math.min(2, args.replicationFactor) };
  const replication = { 'min.insync.replicas': String(minInsyncReplicas) };
  const specs: TopicSpec[] = [];
  const subjects: Array<{ subject: string; avro: object }> = [];
  for (const role of Object.keys(BASE_TOPICS) as TopicRole[]) {
    const name = args.topics[role];
    if (role === 'identityEvents') {
      specs.push({
        name,
        partitions: args.internalPartitions,
        replicationFactor,
        configs: { ...replication, ...INTERNAL_TOPIC_CONFIGS },
      });
      continue;
    }
    const entry = TOPICS[BASE_TOPICS[role]];
    specs.push({
      name,
      partitions: entry.partitions,
      replicationFactor,
      configs: { ...replication, ...entry.configs },
    });
    if (entry.avro) subjects.push({ subject: `${name}-value`, avro: entry.avro as object });
  }
  const { created } = await args.admin.ensureTopics(specs);
  const ids: Record<string, number> = {};
  for (const s of subjects) ids[s.subject] = await args.codec.register(s.subject, s.avro);
  return { topics: specs.length, created, subjects: ids };
}
