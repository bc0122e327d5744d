import { readFileSync } from 'node:fs';
import type { Logger } from '@assurance/core';
import type { KafkaConfig, LogEntry, SASLOptions } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import { installCodecs } from './codecs.ts';
import { muteKafkajsNegativeTimeoutWarning } from './warnings.ts';

/** SASL credentials for every connection. */
export interface KafkaSasl {
  readonly mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain';
  readonly username: string;
  readonly password: string;
}

/** TLS to the brokers: a custom CA, and this client's certificate for mutual TLS (PEM text). */
export interface KafkaTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger: Logger;
  readonly sasl?: KafkaSasl;
  /** `true` for TLS with the system's CAs. */
  readonly tls?: KafkaTls | true;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Most bytes one fetched record batch may decompress to (codecs.ts); larger ones are dead-lettered. */
  readonly maxDecompressedBytes?: number;
}

/**
 * Conditions the client retries by itself and that clear on their own: a coordinator still loading
 * after a broker start, leadership moving, a rebalance in progress. kafkajs logs each retried request
 * at ERROR; what matters is whether the operation finally fails, and our code reports that.
 */
const TRANSIENT =
  /coordinator is (loading|not available)|not the (leader|correct coordinator)|not coordinator|no leader|leader not available|does not host this topic-partition|group is rebalancing|rebalance in progress|generation id is not valid|unknown member|member id|The metadata is being updated/i;

/** kafkajs's log levels mapped onto ours; retried transient failures only show at debug. */
export function kafkajsLevel(level: number, entry: { message?: unknown; error?: unknown }): LevelName {
  const text = `${String(entry.message ?? '')} ${String(entry.error ?? '')}`;
  if (level <= logLevel.WARN && TRANSIENT.test(text)) return 'debug';
  if (level === logLevel.ERROR || level === logLevel.WARN) return 'warn';
  return level === logLevel.INFO ? 'info' : 'debug';
}

type LevelName = 'warn' | 'info' | 'debug';

declare const kafkaClient: unique symbol;

/**
 * A connection to one cluster, made by `createKafka` and used only by this package's factories
 * (consumer, producer, admin, topic reader): what client library lies beneath stays in here.
 */
export interface KafkaClient {
  readonly [kafkaClient]: true;
}

/** The kafkajs client behind a KafkaClient (this package's modules only). */
export function kafkajsOf(client: KafkaClient): Kafka {
  return client as unknown as Kafka;
}

/** One client whose logs go through our structured logger. */
export function createKafka(opts: KafkaClientOptions): KafkaClient {
  installCodecs(
    opts.maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes: opts.maxDecompressedBytes },
  );
  muteKafkajsNegativeTimeoutWarning();
  const log = opts.logger.child({ component: 'kafkajs' });
  const config: KafkaConfig = {
    clientId: opts.clientId,
    brokers: [...opts.brokers],
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, stack, timestamp: _t, logger: _l, ...rest } = entry;
        const lvl = kafkajsLevel(level, entry);
        if (!log.isLevelEnabled(lvl)) return;
        // kafkajs's own stack traces point into kafkajs; they help only when debugging the client.
        log[lvl](lvl === 'debug' && stack ? { ...rest, stack } : rest, String(message));
      },
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
    ...(opts.tls === undefined ? {} : { ssl: opts.tls === true ? true : { ...opts.tls } }),
    // kafkajs types each mechanism apart; ours is one of them by construction.
    ...(opts.sasl === undefined ? {} : { sasl: { ...opts.sasl } as SASLOptions }),
  };
  return new Kafka(config) as unknown as KafkaClient;
}

/**
 * The security part of a client's options from a process's environment (PipelineEnv's KAFKA_SASL_*
 * and KAFKA_TLS_* fields), reading the PEM files once. TLS is on when asked for or when any TLS
 * file is given; SASL PLAIN sends the password as it is, so it is refused without TLS.
 */
export function kafkaSecurity(env: {
  readonly KAFKA_SASL_MECHANISM?: KafkaSasl['mechanism'] | undefined;
  readonly KAFKA_SASL_USERNAME?: string | undefined;
  readonly KAFKA_SASL_PASSWORD?: string | undefined;
  readonly KAFKA_TLS?: boolean | undefined;
  readonly KAFKA_TLS_CA_FILE?: string | undefined;
  readonly KAFKA_TLS_CERT_FILE?: string | undefined;
  readonly KAFKA_TLS_KEY_FILE?: string | undefined;
}): { sasl?: KafkaSasl; tls?: KafkaTls | true } {
  const read = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file, 'utf8'));
  const files = {
    ca: read(env.KAFKA_TLS_CA_FILE),
    cert: read(env.KAFKA_TLS_CERT_FILE),
    key: read(env.KAFKA_TLS_KEY_FILE),
  };
  const anyFile = Object.values(files).some((f) => f !== undefined);
  const tls: KafkaTls | true | undefined = anyFile
    ? Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined))
    : env.KAFKA_TLS
      ? true
      : undefined;
  const {
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_SASL_USERNAME: username,
    KAFKA_SASL_PASSWORD: password,
  } = env;
  if (mechanism === 'plain' && tls === undefined)
    throw new Error('KAFKA_SASL_MECHANISM=plain sends the password in clear: set KAFKA_TLS or a TLS file');
  const sasl = mechanism && username && password ? { mechanism, username, password } : undefined;
  return { ...(sasl ? { sasl } : {}), ...(tls === undefined ? {} : { tls }) };
}

/**
 * How many brokers answer at `broker`, asked once without retries and without logs (a liveness
 * probe for the local stack); rejects when none answers within `timeoutMs`.
 */
export async function probeBrokers(broker: string, timeoutMs: number): Promise<number> {
  muteKafkajsNegativeTimeoutWarning();
  const admin = new Kafka({
    clientId: 'probe',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: timeoutMs,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length;
  } finally {
    await admin.disconnect();
  }
}

export function parseBrokers(list: string): string[] {
  return list
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
}
