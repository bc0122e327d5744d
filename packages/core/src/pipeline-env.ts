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
  /** One Redis server; or REDIS_CLUSTER_NODES for a Redis Cluster (one of the two: checkRedisTarget). */
  REDIS_URL: z.url('REDIS_URL must be a URL, e.g. redis://127.0.0.1:16379').optional(),
  /** A Redis Cluster instead of one server: `host:port` of some of its nodes, comma-separated. */
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(
      /^\s*[^\s,:]+:\d{1,5}\s*(,\s*[^\s,:]+:\d{1,5}\s*)*$/,
      'REDIS_CLUSTER_NODES must be host:port of cluster nodes, comma-separated, e.g. 10.0.0.1:6379,10.0.0.2:6379',
    )
    .optional(),
  /**
   * Where this process reaches each Redis Cluster node when the address a node announces is not
   * reachable from here (a NAT, a container network, a proxy): `announced=reachable`, comma-separated.
   */
  REDIS_CLUSTER_NAT_MAP: z
    .string()
    .regex(
      /^\s*[^\s,:=]+:\d{1,5}=[^\s,:=]+:\d{1,5}\s*(,\s*[^\s,:=]+:\d{1,5}=[^\s,:=]+:\d{1,5}\s*)*$/,
      'REDIS_CLUSTER_NAT_MAP must be announced=reachable host:port pairs, comma-separated, e.g. 10.0.0.1:6379=203.0.113.5:7001',
    )
    .optional(),
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
  /**
   * Candidate policies run beside the live one, by name: `name=path,name=path`. The API answers
   * what-if reads with them (`?policy=<name>`).
   */
  SHADOW_POLICIES: z
    .string()
    .regex(
      /^\s*[a-z0-9][a-z0-9-]{0,39}=[^,=]+(\s*,\s*[a-z0-9][a-z0-9-]{0,39}=[^,=]+)*\s*$/,
      'SHADOW_POLICIES must be name=path pairs, comma-separated, e.g. stricter-sms=policies/stricter.yaml',
    )
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** SASL for every Kafka connection: `scram-sha-512`, `scram-sha-256` or `plain` (over TLS). */
  KAFKA_SASL_MECHANISM: z.enum(['scram-sha-512', 'scram-sha-256', 'plain']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  /** TLS to the brokers; implied by any of the files below. */
  KAFKA_TLS: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .optional(),
  /** PEM file of the CA (or CAs) the brokers' certificates chain to, when not a public one. */
  KAFKA_TLS_CA_FILE: z.string().min(1).optional(),
  /** Mutual TLS: this process's certificate and key, PEM files. */
  KAFKA_TLS_CERT_FILE: z.string().min(1).optional(),
  KAFKA_TLS_KEY_FILE: z.string().min(1).optional(),
});

/** Just the Kafka security fields, for tools that read nothing else (stack provisioning, scripts). */
export const KafkaSecurityEnv = PipelineEnv.pick({
  KAFKA_SASL_MECHANISM: true,
  KAFKA_SASL_USERNAME: true,
  KAFKA_SASL_PASSWORD: true,
  KAFKA_TLS: true,
  KAFKA_TLS_CA_FILE: true,
  KAFKA_TLS_CERT_FILE: true,
  KAFKA_TLS_KEY_FILE: true,
}).superRefine((c, ctx) => checkKafkaSecurity(c, ctx));

/**
 * The Kafka security settings must make sense together; every process's schema runs this on its
 * own values (zod cannot carry a refinement through `pick` and `extend`).
 */
export function checkKafkaSecurity(
  c: {
    KAFKA_SASL_MECHANISM?: string | undefined;
    KAFKA_SASL_USERNAME?: string | undefined;
    KAFKA_SASL_PASSWORD?: string | undefined;
    KAFKA_TLS_CERT_FILE?: string | undefined;
    KAFKA_TLS_KEY_FILE?: string | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (c.KAFKA_SASL_MECHANISM && (!c.KAFKA_SASL_USERNAME || !c.KAFKA_SASL_PASSWORD)) {
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_SASL_USERNAME'],
      message: 'KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD',
    });
  }
  if (!c.KAFKA_SASL_MECHANISM && (c.KAFKA_SASL_USERNAME || c.KAFKA_SASL_PASSWORD)) {
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_SASL_MECHANISM'],
      message: 'a SASL username or password without KAFKA_SASL_MECHANISM would be ignored',
    });
  }
  if (Boolean(c.KAFKA_TLS_CERT_FILE) !== Boolean(c.KAFKA_TLS_KEY_FILE)) {
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_TLS_CERT_FILE'],
      message: 'mutual TLS needs both KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE',
    });
  }
}

/**
 * Exactly one of REDIS_URL and REDIS_CLUSTER_NODES names the store; every process that uses Redis
 * runs this on its own values (as checkKafkaSecurity).
 */
export function checkRedisTarget(
  c: {
    REDIS_URL?: string | undefined;
    REDIS_CLUSTER_NODES?: string | undefined;
    REDIS_CLUSTER_NAT_MAP?: string | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (c.REDIS_CLUSTER_NAT_MAP && !c.REDIS_CLUSTER_NODES) {
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_CLUSTER_NAT_MAP'],
      message: 'REDIS_CLUSTER_NAT_MAP maps the nodes of a Redis Cluster: it needs REDIS_CLUSTER_NODES',
    });
  }
  if (!c.REDIS_URL && !c.REDIS_CLUSTER_NODES) {
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_URL'],
      message:
        'REDIS_URL is required, e.g. redis://127.0.0.1:16379 (or REDIS_CLUSTER_NODES for a Redis Cluster)',
    });
  }
  if (c.REDIS_URL && c.REDIS_CLUSTER_NODES) {
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_CLUSTER_NODES'],
      message: 'set REDIS_URL or REDIS_CLUSTER_NODES, not both: they would name two stores',
    });
  }
}

/** The deployment's channel secret (HMAC key of every channel value); see the engine's config. */
export const ChannelHashSecret = z
  .string({ error: 'CHANNEL_HASH_SECRET is required: a stable secret of at least 16 characters' })
  .min(16, 'CHANNEL_HASH_SECRET must be at least 16 characters');
