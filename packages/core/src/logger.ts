import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs (pino). Channel values and identities are never logged in clear by our code:
 * log channel refs (hashes) and identity ids only at debug level.
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['*.phoneNumber', '*.mailbox', '*.channel.value', '*.subject.value'],
      censor: '[redacted]',
    },
  });
}
