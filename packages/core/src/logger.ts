import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

/** `auto`: readable lines on a terminal, JSON lines everywhere else (pipes, files, collectors). */
export type LogFormat = 'auto' | 'json' | 'pretty';

const FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

function resolveFormat(format: string | undefined): 'json' | 'pretty' {
  const f = (FORMATS as readonly string[]).includes(format ?? '') ? (format as LogFormat) : 'auto';
  if (f !== 'auto') return f;
  return process.stdout.isTTY ? 'pretty' : 'json';
}

/**
 * Structured logs (pino). Channel values and identities are never logged in clear by our code:
 * log channel refs (hashes) and identity ids only at debug level.
 *
 * `LOG_FORMAT` (`auto`, `json`, `pretty`) picks the output; the pretty printer runs in-process and
 * synchronously, so a log line written just before `process.exit` is never lost.
 */
export function createLogger(
  name: string,
  level: string = process.env.LOG_LEVEL ?? 'info',
  format: string | undefined = process.env.LOG_FORMAT,
): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['*.phoneNumber', '*.mailbox', '*.channel.value', '*.subject.value'],
      censor: '[redacted]',
    },
  };
  if (resolveFormat(format) === 'json') return pino(options);
  return pino(
    options,
    pretty({
      sync: true,
      colorize: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
      messageFormat: '{if component}[{component}] {end}{msg}',
    }),
  );
}
