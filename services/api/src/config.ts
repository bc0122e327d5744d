import {
  ChannelHashSecret,
  checkKafkaSecurity,
  checkRedisTarget,
  envDuration,
  PipelineEnv,
  parseConfig,
} from '@assurance/core';
import { SetSigner } from '@assurance/ssf';
import { z } from 'zod';
import { ApiTokens } from './tokens.ts';

/**
 * The HTTP API's whole configuration, parsed once at start from the environment. Types are
 * inferred from this schema; nothing else reads process.env. The Kafka, Redis and naming variables
 * mean the same as the engine's and must match the engine it reads from.
 */
export const ApiConfigSchema = z
  .object({
    ...PipelineEnv.omit({ INTERNAL_PARTITIONS: true }).shape,
    CLIENT_ID: z.string().min(1).default('assurance-api'),
    API_HOST: z.string().min(1).default('127.0.0.1'),
    API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    /** Bearer tokens with scopes (see tokens.ts for the two accepted spellings). */
    API_TOKENS: ApiTokens,
    /** Largest request body; larger ones get 413 before they are parsed. */
    BODY_LIMIT: z.coerce
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(16 * 1024),
    /** Messages the engine may be behind (router + decider) before answers fail closed. */
    MAX_ENGINE_LAG: z.coerce.number().int().min(0).default(1000),
    /**
     * A message may wait this long for the engine without it making progress on its partition before
     * every answer fails closed (`engine_stalled`), however few messages wait.
     */
    MAX_STALL: envDuration.default(5000),
    /** How often the engine's offsets are sampled in the background (never per request). */
    LAG_REFRESH_INTERVAL: envDuration.default(500),
    /** A lag measurement older than this is unknown, and unknown lag fails closed. */
    LAG_MAX_AGE: envDuration.default(10_000),
    /** Per-command Redis timeout: a slow Redis answers fail-closed instead of hanging callers. */
    REDIS_TIMEOUT: envDuration.default(500),
    /** How long POST /v1/signals waits for the broker's acknowledgement before answering 503. */
    PRODUCE_TIMEOUT: envDuration.default(10_000),
    /**
     * The engine's channel secret, so that `POST /v1/assurance/verify` can judge the channel a user
     * completed a step-up on (`completed.channel`). Without it that channel is not judged, and an
     * authenticator the tier accepts on some bindings only is reported `channel_required`.
     */
    CHANNEL_HASH_SECRET: ChannelHashSecret.optional(),
    /**
     * Shared Signals transmitters whose Security Event Tokens this API receives (docs/shared-signals.md):
     * a YAML or JSON file, validated at start. Unset: the /ssf routes answer 404.
     */
    SSF_TRANSMITTERS_FILE: z.string().min(1).optional(),
    /** How often each transmitter's stream status is read and verification asked for when due. */
    SSF_CHECK_INTERVAL: envDuration.default(10_000),
    /**
     * Our own Shared Signals transmitter: its issuer (the URL receivers reach this API at). Unset:
     * this deployment transmits nothing. Needs SSF_SIGNING_KEYS.
     */
    SSF_ISSUER: z
      .url('SSF_ISSUER must be the URL receivers reach this API at, e.g. https://assurance.example.com')
      .optional(),
    /** Private JWKs (JSON array) our SETs are signed with; the first signs, all are published. */
    SSF_SIGNING_KEYS: z.string().min(1).optional(),
    /**
     * The console's timelines and overview (docs/console.md): records of each partition of the audit
     * and dead-letter topics read back at start (then every new one is followed). 0: none read back.
     */
    CONSOLE_LOOKBACK: z.coerce.number().int().min(0).max(1_000_000).default(10_000),
    /** Identities whose recent decisions the console keeps (the most recently decided ones). */
    CONSOLE_IDENTITIES: z.coerce.number().int().min(1).max(1_000_000).default(20_000),
  })
  .superRefine((c, ctx) => {
    checkKafkaSecurity(c, ctx);
    if (c.SSF_ISSUER && !c.SSF_SIGNING_KEYS)
      ctx.addIssue({
        code: 'custom',
        path: ['SSF_SIGNING_KEYS'],
        message: 'SSF_ISSUER needs SSF_SIGNING_KEYS: npm run assurance -- ssf keys generate makes one',
      });
    if (c.SSF_ISSUER && c.SSF_SIGNING_KEYS)
      try {
        new SetSigner(c.SSF_ISSUER, c.SSF_SIGNING_KEYS);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['SSF_SIGNING_KEYS'], message: (err as Error).message });
      }
    if (c.LAG_MAX_AGE <= c.LAG_REFRESH_INTERVAL) {
      ctx.addIssue({
        code: 'custom',
        path: ['LAG_MAX_AGE'],
        message: 'LAG_MAX_AGE must be longer than LAG_REFRESH_INTERVAL, or every answer fails closed',
      });
    }
  })
  // Run even when other fields fail, so a missing store is reported with them.
  .superRefine((c, ctx) => checkRedisTarget(c, ctx), { when: () => true });

export type ApiConfig = z.infer<typeof ApiConfigSchema>;

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  return parseConfig(ApiConfigSchema, env);
}
