/**
 * One error base for the whole project (STYLE.md §6): a closed list of codes and the cause. `dispositionOf` is the single exhaustive place that maps an error to what the
 * pipeline does with the message that caused it.
 */

export const ERROR_CODES = [
  // Input that can never succeed: dead-letter it and go on.
  'message_too_large',
  'empty_message',
  'unknown_encoding',
  'invalid_json',
  'invalid_utf8',
  'invalid_avro',
  'validation_failed',
  'key_mismatch',
  // Dated further ahead of our clock than producers' clocks may drift: applying it would let a
  // producer's clock decide what ages out when (docs/state.md, time).
  'future_event',
  // A record batch that does not decompress, or decompresses past the bound (packages/kafka codecs).
  'compression_invalid',
  'compression_too_large',
  // The registry answered that this schema id does not exist: the message can never be read.
  'unknown_schema_id',
  // A Security Event Token our transmitter could not deliver to a receiver after its retries
  // (docs/shared-signals.md): dead-lettered with its stream and jti, not retried further.
  'delivery_failed',
  // The schema id is not cached and the registry cannot be asked now: pause and retry.
  'registry_unavailable',
  // Infrastructure that will come back: retry without committing.
  'redis_unavailable',
  'kafka_unavailable',
  'stale_write',
  // The state store lost data or changed under us (docs/state.md, data loss): hold until it is
  // verified or rebuilt, never decide from it.
  'store_lost',
  // The message itself makes our code fail (a script or code path that throws on it): retry for the
  // retry budget, then dead-letter it and fail its subject closed (one message never stalls a stage).
  'script_failed',
  'internal',
  // A broken deployment: stop, let the orchestrator restart us.
  'kafka_rejected',
  'config_invalid',
  'policy_invalid',
  // The store belongs to another deployment (prefix, channel secret), or holds data our code cannot
  // read: stop with a message, never guess.
  'store_mismatch',
  'state_corrupt',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class AssuranceError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AssuranceError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /** What the pipeline does with the message that failed so: always `dispositionOf(code)`. */
  get disposition(): Disposition {
    return dispositionOf(this.code);
  }
}

export type Disposition = 'dead_letter' | 'retry' | 'quarantine' | 'stop';

/** What the pipeline does with a message whose processing failed with `code`. */
export function dispositionOf(code: ErrorCode): Disposition {
  switch (code) {
    case 'message_too_large':
    case 'empty_message':
    case 'unknown_encoding':
    case 'invalid_json':
    case 'invalid_utf8':
    case 'invalid_avro':
    case 'validation_failed':
    case 'key_mismatch':
    case 'future_event':
    case 'unknown_schema_id':
    case 'compression_invalid':
    case 'compression_too_large':
    case 'delivery_failed':
      return 'dead_letter';
    case 'registry_unavailable':
    case 'redis_unavailable':
    case 'kafka_unavailable':
    case 'stale_write':
    case 'store_lost':
      return 'retry';
    case 'script_failed':
    case 'internal':
      return 'quarantine';
    case 'kafka_rejected':
    case 'config_invalid':
    case 'policy_invalid':
    case 'store_mismatch':
    case 'state_corrupt':
      return 'stop';
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

/** Wraps anything thrown into an AssuranceError, keeping the original as cause. */
export function asAssuranceError(err: unknown, fallback: ErrorCode = 'internal'): AssuranceError {
  if (err instanceof AssuranceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AssuranceError(fallback, message, { cause: err });
}
