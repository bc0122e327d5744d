import { z } from 'zod';

/**
 * The environment every process of one deployment must agree on (engine, API, CLI, stack
 * provisioning): where Kafka, the registry and Redis are, the store's prefix, the topics'
 * namespace, the engine's group and the policy. Each process composes its own schema from these
 * fields (`PipelineEnv.pick(...)`, `.extend(...)`), so a rule such as the prefix's alphabet is
 * written once and checked everywhere.
 */
export const PipelineEnv = z.object({
  KAFKA_BROKERS: z
    .string({ error: 'KAFKA_BROKERS is required, e.g. 127.0.0.1:19092' })
    .min(1, 'KAFKA_BROKERS is required, e.g. 127.0.0.1:19092'),
  SCHEMA_REGISTRY_URL: z.url(
    'SCHEMA_REGISTRY_URL must be a URL, e.g. http://127.0.0.1:18081/apis/ccompat/v7',
  ),
  REDIS_URL: z.url('REDIS_URL must be a URL, e.g. redis://127.0.0.1:16379'),
  REDIS_PREFIX: z
    .string()
    .regex(/^[a-z0-9:_-]{1,64}$/i, 'REDIS_PREFIX must be 1 to 64 of a-z, 0-9, ":", "_" and "-"')
    .default('ra:'),
  /** Prepended to every topic name (`<ns>.identity.login.v1`): isolates tests and tenants of a cluster. */
  TOPIC_NAMESPACE: z
    .string()
    .regex(/^[a-zA-Z0-9._-]{0,80}$/, 'TOPIC_NAMESPACE must be up to 80 of a-z, A-Z, 0-9, ".", "_" and "-"')
    .default(''),
  /** Partitions of the internal identity-keyed topic: the unit of parallelism of the decider. */
  INTERNAL_PARTITIONS: z.coerce.number().int().min(1).max(256).default(6),
  /** The engine's consumer group id (its stages use `<id>.router` and `<id>.decider`). */
  ENGINE_GROUP_ID: z.string().min(1).default('assurance-engine'),
  /** The policy every process decides or answers with; the shipped default when unset. */
  POLICY_FILE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The deployment's channel secret (HMAC key of every channel value); see the engine's config. */
export const ChannelHashSecret = z
  .string({ error: 'CHANNEL_HASH_SECRET is required: a stable secret of at least 16 characters' })
  .min(16, 'CHANNEL_HASH_SECRET must be at least 16 characters');
