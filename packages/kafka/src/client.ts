import type { Logger } from '@assurance/core';
import type { KafkaConfig, LogEntry } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import { muteKafkajsNegativeTimeoutWarning } from './warnings.ts';

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger: Logger;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

const LEVEL: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** One kafkajs client whose logs go through our structured logger. */
export function createKafka(opts: KafkaClientOptions): Kafka {
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
        const { message, ...rest } = entry;
        // kafkajs logs every retried request at ERROR; the retry outcome is what matters to us.
        const lvl = LEVEL[level] ?? 'info';
        log[lvl === 'error' ? 'warn' : lvl](rest, String(message));
      },
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
  };
  return new Kafka(config);
}

export function parseBrokers(list: string): string[] {
  return list
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
}
