import { AssuranceError, type ErrorCode } from '@assurance/core';
import { ReplyError } from 'ioredis';

/**
 * Replies that say Redis cannot serve right now, not that our command is wrong: loading its data,
 * busy with a long script, out of memory, a replica that took over read-only, a cluster slot on
 * the move. Everything else Redis replies with an error to is our script failing on its input.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|MOVED|ASK|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

/**
 * Maps what a Redis call threw to the project's error, where the call is made: a connection that is
 * down or a transient reply is `redis_unavailable` (retried for as long as it lasts); an error
 * reply to a script (a Lua error, ERR_UNKNOWN_MUTATION…) is `script_failed`, which the pipeline
 * retries for a bounded time and then quarantines with the message that caused it.
 */
/**
 * What our scripts' own error replies mean (the `ERR_…` word they start with): one table, so each
 * failure maps to one typed error wherever the call is made.
 */
const SCRIPT_ERRORS: Readonly<Record<string, ErrorCode>> = {
  // A key holds the state of another identity: a collision or tampering, never something to retry.
  ERR_STATE_OWNER: 'state_corrupt',
  // Stored state the scripts cannot read (an unknown scope index): never guessed at.
  ERR_STATE_FORMAT: 'state_corrupt',
  // The engine sent what the script does not know: a version mismatch or a bug.
  ERR_UNKNOWN_MUTATION: 'script_failed',
  ERR_SEQUENCE: 'internal',
};

export function storeError(err: unknown, what: string): AssuranceError {
  if (err instanceof AssuranceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ReplyError && !TRANSIENT_REPLY.test(message)) {
    const word = /\b(ERR_[A-Z_]+)\b/.exec(message)?.[1];
    const code = (word && SCRIPT_ERRORS[word]) || 'script_failed';
    return new AssuranceError(code, `${what}: ${message}`, { cause: err });
  }
  return new AssuranceError('redis_unavailable', `${what}: ${message}`, { cause: err });
}
