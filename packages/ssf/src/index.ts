export { requestedEvents, SSF_USAGE, ssfMain } from './cli.ts';
export type { Transmitter, TransmitterInput } from './config.ts';
export {
  loadTransmitters,
  parseTransmitters,
  TransmittersFileError,
  TransmittersFileSchema,
} from './config.ts';
export type { EventTypeName } from './events.ts';
export { EVENT_TYPES, eventTypeName } from './events.ts';
export type { HealthFacts, HealthRules, Unhealthy } from './health.ts';
export { unhealthy } from './health.ts';
export type { Mapped, MappingRule } from './mapping.ts';
export { DEFAULT_MAPPING, mapEvent, mappingFrom } from './mapping.ts';
export type { PollerOptions, PollResult } from './poll.ts';
export { outcomeOf, Poller } from './poll.ts';
export type { Received, ReceiverDeps } from './receiver.ts';
export { SetReceiver } from './receiver.ts';
export type { StreamClientOptions } from './stream-client.ts';
export {
  DELIVERY_POLL,
  DELIVERY_PUSH,
  discoveryUrl,
  StreamApiError,
  StreamClient,
  StreamConfiguration,
  StreamStatus,
  TransmitterConfiguration,
} from './stream-client.ts';
export type { ResolvedSubject, SubjectRules } from './subject.ts';
export { resolveSubject, SubjectError } from './subject.ts';
export type { OutgoingEvent, SentState } from './transmit.ts';
export { eventsFor, generateSsfKey, jtiOf, SetSigner, sentStateOf } from './transmit.ts';
export type { RejectionReason, SetErrorCode, VerifiedSet, VerifierOptions } from './verify.ts';
export { KeysUnavailable, MAX_SET_BYTES, REJECTION_REASONS, SetRejection, SetVerifier } from './verify.ts';
