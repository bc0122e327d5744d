/**
 * `@assurance/client`: what an app calls before a high-risk action. One interface, two transports
 * (the HTTP API or a local view of the compacted `assurance.decisions.v1` topic), and one rule:
 * when the answer cannot be trusted, it is the strictest requirement, marked `degraded`, and it
 * never verifies as satisfied.
 *
 * ```ts
 * const client = createAssuranceClient({ mode: 'http', baseUrl, token });
 * const answer = await client.verify(userId, 'payout.change', session.completed);
 * if (!answer.satisfied) return deny(answer.missing);
 * ```
 */

/** The engines' public keys as topic mode takes them (`decisionKeys`), parsed from JSON. */
export { type DecisionPublicJwk, parsePublicKeys } from '@assurance/schemas';
export {
  checkAction,
  checkArguments,
  checkCompletion,
  DEGRADED_MISSING,
  failClosedAnswer,
  mergeVerdicts,
  verifyAgainst,
} from './answers.ts';
export { createAssuranceClient } from './client.ts';
export {
  DecisionView,
  MAX_DECISION_BYTES,
  type ViewEntry,
  type ViewMessage,
  type ViewUpdate,
} from './decision-view.ts';
export {
  AssuranceClientError,
  type AssuranceClientErrorOptions,
  CLIENT_ERROR_CODES,
  type ClientErrorCode,
  isAssuranceClientError,
  type ProblemDetails,
} from './errors.ts';
export { HttpAssuranceClient } from './http-client.ts';
export { RequirementResponse, VerifyResponse } from './http-schemas.ts';
export {
  type AssuranceClientOptions,
  type CommonOptions,
  DEFAULTS,
  type HttpClientOptions,
  type TokenSource,
  type TopicClientOptions,
  type ViewEvent,
} from './options.ts';
export { decisionsTopicName, TopicAssuranceClient } from './topic-client.ts';
export {
  type AnswerSource,
  type AssuranceClient,
  type ClientHealth,
  type CompletedStepUp,
  DEGRADED_REASONS,
  type DegradedReason,
  type MissingRequirement,
  type RequirementAnswer,
  type VerifyAnswer,
} from './types.ts';
