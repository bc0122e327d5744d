import { loadPolicyFile, type Policy } from '@assurance/policy';
import { AssuranceClientError } from './errors.ts';
import { HttpAssuranceClient } from './http-client.ts';
import type { AssuranceClientOptions } from './options.ts';
import { TopicAssuranceClient } from './topic-client.ts';
import type { AssuranceClient } from './types.ts';

function policyOf(options: AssuranceClientOptions): Policy {
  if (options.policy !== undefined) return options.policy;
  try {
    return loadPolicyFile();
  } catch (error) {
    throw new AssuranceClientError('invalid_options', 'cannot load the default policy', { cause: error });
  }
}

/**
 * Creates the client an app calls before a high-risk action. Create one per process and share it.
 *
 * - `mode: 'http'` asks the assurance API on every call;
 * - `mode: 'topic'` starts reading the compacted decisions topic at once (await `ready()` before
 *   serving, or answers are degraded `not_ready` until the first read completes).
 *
 * Nothing is fetched or connected for HTTP until the first call. Both fail closed.
 * @throws AssuranceClientError `invalid_options` for options it cannot work with.
 */
export function createAssuranceClient(options: AssuranceClientOptions): AssuranceClient {
  if (typeof options !== 'object' || options === null) {
    throw new AssuranceClientError('invalid_options', 'options must be an object');
  }
  const mode: string = options.mode;
  switch (options.mode) {
    case 'http':
      return new HttpAssuranceClient(options, policyOf(options));
    case 'topic':
      return new TopicAssuranceClient(options, policyOf(options));
    default:
      throw new AssuranceClientError('invalid_options', `mode must be 'http' or 'topic', got '${mode}'`);
  }
}
