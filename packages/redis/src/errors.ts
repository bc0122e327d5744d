import { AssuranceError } from '@assurance/core';
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
export function storeError(err: unknown, what: string): AssuranceError {
  if (err instanceof AssuranceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ReplyError && !TRANSIENT_REPLY.test(message)) {
    return new AssuranceError('script_failed', `${what}: ${message}`, { cause: err });
  }
  return new AssuranceError('redis_unavailable', `${what}: ${message}`, { cause: err });
}
