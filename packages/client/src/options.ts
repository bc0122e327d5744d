import type { Logger } from '@assurance/core';
import type { KafkaSasl, KafkaTls } from '@assurance/kafka';
import type { Policy } from '@assurance/policy';
import type { DecisionPublicJwk } from '@assurance/schemas';
import type { ViewUpdate } from './decision-view.ts';
import { AssuranceClientError } from './errors.ts';

/** Options shared by both transports. */
export interface CommonOptions {
  /**
   * The policy that maps actions to tiers and gives the strictest requirement when failing closed
   * (topic mode also evaluates the baseline and verifies with it). Default: `loadPolicyFile()`, the
   * shipped default policy. Use the same policy as the engine.
   */
  readonly policy?: Policy;
  /** Clock, for tests. Default: `() => new Date()`. */
  readonly now?: () => Date;
}

/** A bearer token, or a function that returns the current one (called per request, so it can rotate). */
export type TokenSource = string | (() => string | Promise<string>);

/** `mode: 'http'`: ask the assurance HTTP API. */
export interface HttpClientOptions extends CommonOptions {
  readonly mode: 'http';
  /** Base URL of the API, e.g. `https://assurance.internal:8443` (paths `/v1/...` are appended). */
  readonly baseUrl: string;
  /** Bearer token with the scope to read assurance and verify. */
  readonly token: TokenSource;
  /** Whole-request budget, response body included. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** Larger response bodies are treated as garbage. Default 256 KiB. */
  readonly maxResponseBytes?: number;
}

/** Something that happened in the topic view, for metrics, logs and tests. */
export type ViewEvent =
  | ViewUpdate
  /** Every partition was read to its end as of `asOfMs` (epoch ms). */
  | { readonly kind: 'caught_up'; readonly asOfMs: number }
  /** The view finished its first read of the topic. */
  | { readonly kind: 'ready' }
  /** Checking the consumer's lag failed; the view ages until a check succeeds. */
  | { readonly kind: 'lag_check_failed'; readonly error: Error }
  /** The consumer crashed; when `restarting` is false the view is dead and every answer degraded. */
  | { readonly kind: 'consumer_crashed'; readonly error: Error; readonly restarting: boolean };

/** `mode: 'topic'`: keep a local view of the compacted decisions topic. */
export interface TopicClientOptions extends CommonOptions {
  readonly mode: 'topic';
  /** `host:port` list, or one comma-separated string. */
  readonly brokers: string | readonly string[];
  /** Topic namespace (tests): the topic is `<namespace>.assurance.decisions.v1`. Default: none. */
  readonly namespace?: string;
  /** The full topic name, overriding `namespace`. */
  readonly topic?: string;
  /** Answers are degraded once the view has not been caught up for this long. Default 15000 ms. */
  readonly maxStalenessMs?: number;
  /** How often the consumer's lag is checked when nothing arrives. Default 1000 ms; keep it well under `maxStalenessMs`. */
  readonly lagCheckIntervalMs?: number;
  /**
   * The engine's consumer group id (`ENGINE_GROUP_ID`). The client watches the engine's offsets on
   * its input and internal topics and answers degraded (`engine_stalled`) when a message has waited
   * longer than `maxStallMs` without the engine making progress. Default `assurance-engine`.
   * Needs Describe on those topics and groups.
   */
  readonly engineGroupId?: string;
  /** The engine's topic namespace (`TOPIC_NAMESPACE`), when it differs from `namespace`. */
  readonly engineNamespace?: string;
  /** See `engineGroupId`. Default 5000 ms, like the API's `MAX_STALL`. */
  readonly maxStallMs?: number;
  /**
   * Default true. False turns the engine watch off: answers then trust the view alone and a stalled
   * engine goes unnoticed here. Only for deployments where something else fails the app closed when
   * the engine stalls (for example an app that also asks the API).
   */
  readonly watchEngine?: boolean;
  /**
   * The engine's `CHANNEL_HASH_SECRET`, to judge `completed.channel` in `verify` (the API does it in
   * HTTP mode). Without it, a verify that names a channel throws `invalid_request`.
   */
  readonly channelHashSecret?: string;
  /**
   * The engines' public keys (Ed25519 JWKs with their kid; several during a rotation): only
   * decisions they signed are answered from, and a decision without a valid signature, a tombstone,
   * or a sequence dated far ahead fails its identity closed (docs/contract.md#signed-decisions).
   * Required unless `verifySignatures` is false.
   */
  readonly decisionKeys?: readonly DecisionPublicJwk[];
  /**
   * The most identities the view holds (memory: about 1.5–2 KB each with format 2 decisions). Once
   * a decision finds no room, every identity the view does not hold answers degraded (`view_full`)
   * instead of the baseline, since it may be one it dropped. Default: no bound; size it above the
   * population with room to grow, and alert on `health().rejected.view_full`.
   */
  readonly maxIdentities?: number;
  /** Default true. False reads decisions unverified: only where nobody else can write the topic. */
  readonly verifySignatures?: boolean;
  /** SASL for the client's Kafka connections (SCRAM-SHA-512/256, or PLAIN over TLS). */
  readonly sasl?: KafkaSasl;
  /** TLS to the brokers: `true` with the system's CAs, or PEM text of a custom CA and, for mutual TLS, this app's certificate and key. */
  readonly tls?: KafkaTls | true;
  /**
   * A decision is valid until its `validUntil` (the engine republishes it before then); past it by
   * more than this grace, the identity answers degraded (`decision_expired`). Default 60000 ms.
   */
  readonly validUntilGraceMs?: number;
  /** Kafka client id. Default `assurance-client`. */
  readonly clientId?: string;
  /**
   * Prefix of the consumer group. Every client instance joins its own group
   * (`<prefix>-<random uuid>`) so that it reads the whole topic and every partition.
   * Default `assurance-client`.
   */
  readonly groupIdPrefix?: string;
  /** A pino logger (from `@assurance/core`). Default: `createLogger('assurance-client', 'warn')`. */
  readonly logger?: Logger;
  /** Called for every view event (synchronously; keep it cheap, never throw). */
  readonly onViewEvent?: (event: ViewEvent) => void;
}

/** Options of `createAssuranceClient`, discriminated by `mode`. */
export type AssuranceClientOptions = HttpClientOptions | TopicClientOptions;

/** Defaults, in one place. */
export const DEFAULTS = {
  timeoutMs: 2000,
  maxResponseBytes: 256 * 1024,
  maxStalenessMs: 15_000,
  lagCheckIntervalMs: 1000,
  engineGroupId: 'assurance-engine',
  maxStallMs: 5000,
  validUntilGraceMs: 60_000,
  clientId: 'assurance-client',
  groupIdPrefix: 'assurance-client',
} as const;

function invalid(message: string): never {
  throw new AssuranceClientError('invalid_options', message);
}

/** A positive integer option within bounds, or its default. */
export function boundedInt(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0 || value > max)
    invalid(`${name} must be an integer in 1..${max}`);
  return value;
}

/** Brokers as a list; at least one `host:port`. */
export function brokerList(brokers: string | readonly string[]): string[] {
  const list = (typeof brokers === 'string' ? brokers.split(',') : [...brokers])
    .map((b) => (typeof b === 'string' ? b.trim() : ''))
    .filter((b) => b.length > 0);
  if (list.length === 0) invalid('brokers must name at least one host:port');
  for (const b of list) if (!/^[^\s:]+:\d{1,5}$/.test(b)) invalid(`broker "${b}" is not host:port`);
  return list;
}

/** The API base URL, without a trailing slash; http(s) only, no credentials, query or fragment. */
export function baseUrlOf(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return invalid(`baseUrl "${raw}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid('baseUrl must be http: or https:');
  if (url.username || url.password) invalid('baseUrl must not embed credentials; use token');
  if (url.search || url.hash) invalid('baseUrl must not have a query or fragment');
  return url.href.replace(/\/+$/, '');
}

/** Rejects an empty static token at creation rather than on the first call. */
export function checkToken(token: TokenSource): void {
  if (typeof token === 'function') return;
  if (typeof token !== 'string' || token.trim().length === 0)
    invalid('token must be a non-empty string or a function');
  if (/[\r\n]/.test(token)) invalid('token must not contain line breaks');
}
