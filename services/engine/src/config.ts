import {
  ChannelHashSecret,
  checkKafkaSecurity,
  checkRedisTarget,
  envDuration,
  envList,
  PipelineEnv,
  parseConfig,
} from '@assurance/core';
import { COMPRESSIONS } from '@assurance/kafka';
import { parsePublicKeys, parseSigningKey } from '@assurance/schemas';
import { z } from 'zod';

/**
 * The engine's whole configuration, parsed once at start from the environment. Types are inferred
 * from this schema; nothing else reads process.env.
 */
export const EngineConfigSchema = z
  .object({
    ...PipelineEnv.shape,
    /** Keys every channel hash; rotating it orphans existing channel state, so treat it as durable. */
    CHANNEL_HASH_SECRET: ChannelHashSecret,
    /**
     * The private Ed25519 JWK (JSON, with a kid) every decision is signed with
     * (docs/contract.md#signed-decisions); `npm run assurance -- keys generate` makes one.
     */
    DECISION_SIGNING_KEY: z
      .string({ error: 'DECISION_SIGNING_KEY is required: npm run assurance -- keys generate makes one' })
      .superRefine((s, ctx) => {
        try {
          parseSigningKey(s);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
    /**
     * Public keys (a JWK, an array, or a JWK set, as JSON) of earlier signing keys still trusted when
     * the engine reads decisions back (rebuilding a store) during a rotation.
     */
    DECISION_PUBLIC_KEYS: z
      .string()
      .superRefine((s, ctx) => {
        try {
          parsePublicKeys(s);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .optional(),
    CLIENT_ID: z.string().min(1).default('assurance-engine'),
    MAX_MESSAGE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(64 * 1024),
    /**
     * How long cleared and expired signals and unbound bindings are remembered, so an event that
     * arrives this late (a replay, a partition behind the others) is still judged against them and
     * cannot resurrect them (docs/state.md, time).
     */
    LATE_EVENT_WINDOW: envDuration.default(7 * 86_400_000),
    /** An identity's state is forgotten this long after its last event, unless a signal is open-ended. */
    STATE_TTL: envDuration.default(400 * 86_400_000),
    /** How far ahead of the engine's clock an event may be dated; later ones are dead-lettered (`future_event`). */
    MAX_CLOCK_SKEW: envDuration.default(10 * 60_000),
    /** How often the store's fingerprint and epoch are checked between batches (each batch checks too). */
    STORE_CHECK_INTERVAL: envDuration.default(2000),
    SWEEP_INTERVAL: envDuration.default(1000),
    SWEEP_LEASE: envDuration.default(30_000),
    /**
     * Members per page of a channel fan-out (a hint to Redis's HSCAN): a channel event reaches its
     * first page itself, and engines running the router send the rest page by page from a queue,
     * polling it every SWEEP_INTERVAL and leasing a page for SWEEP_LEASE (docs/state.md, channel
     * membership).
     */
    FANOUT_PAGE_SIZE: z.coerce.number().int().min(10).max(10_000).default(500),
    RETRY_BACKOFF: envDuration.default(1000),
    /**
     * How long a message that itself keeps failing (a script or code path throwing on it) is retried
     * before it is dead-lettered and its subject fails closed. Infrastructure errors wait indefinitely.
     */
    RETRY_BUDGET: envDuration.default(30_000),
    /** Dead letters keep at most this much of the original value (with its size and sha256). */
    DLQ_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(512 * 1024)
      .default(64 * 1024),
    /**
     * The format of the decisions the engine publishes: `v2`, tiers written relative to the policy
     * (docs/contract.md, decision format 2), several times smaller; `v1`, every tier spelled out,
     * for readers that do not read v2 yet while they are upgraded (the client library reads both).
     */
    DECISION_FORMAT: z.enum(['v1', 'v2']).default('v2'),
    /** Compression of what the engine produces (decisions, audit, internal, dead letters). */
    PRODUCE_COMPRESSION: z.enum(COMPRESSIONS).default('none'),
    /** Most bytes one fetched record batch may decompress to; a larger one is dead-lettered (a bomb). */
    MAX_BATCH_DECOMPRESSED_BYTES: z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .max(1024 * 1024 * 1024)
      .default(64 * 1024 * 1024),
    /**
     * The stages this process runs (`router`, `decider`, `sweeper`, comma-separated): all of them by
     * default; a deployment may scale them apart.
     */
    ENGINE_STAGES: envList
      .pipe(z.array(z.enum(['router', 'decider', 'sweeper'])).min(1, 'ENGINE_STAGES names no stage'))
      .default(['router', 'decider', 'sweeper']),
    /** Partition batches in flight per stage: overlap their Redis and Kafka round trips. */
    CONSUMER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
    /** How long the group waits for a silent member (a crashed engine) before reassigning its partitions. */
    CONSUMER_SESSION_TIMEOUT: envDuration.default(10_000),
    /** 0 disables the metrics server. */
    METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
    /** Loopback by default; containers set 0.0.0.0 so Prometheus can reach it. */
    METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  })
  .superRefine((c, ctx) => {
    checkKafkaSecurity(c, ctx);
    if (c.SWEEP_LEASE <= c.SWEEP_INTERVAL) {
      ctx.addIssue({
        code: 'custom',
        path: ['SWEEP_LEASE'],
        message: 'SWEEP_LEASE must be longer than SWEEP_INTERVAL, or claimed expiries fire twice',
      });
    }
  })
  // Run even when other fields fail, so a missing store is reported with them.
  .superRefine((c, ctx) => checkRedisTarget(c, ctx), { when: () => true });

export type EngineConfig = z.infer<typeof EngineConfigSchema>;

export function loadEngineConfig(env: NodeJS.ProcessEnv = process.env): EngineConfig {
  return parseConfig(EngineConfigSchema, env);
}
