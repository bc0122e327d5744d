/**
 * `@assurance/schemas`: the v1 event contract. Vocabulary, identity state and decision types, the
 * input event schemas (validate + normalize), the topic catalog with its Avro schemas, and pure
 * decoding helpers for message values.
 */
export * from './avro.ts';
export { assertAvroBounds, InvalidUtf8Error } from './avro-guard.ts';
export { AVRO_NAMES } from './avro-names.ts';
export * from './channel-ref.ts';
export * from './clock.ts';
export * from './contract-error.ts';
export * from './country-codes.ts';
export * from './decision.ts';
export * from './envelope.ts';
export * from './events/channel-binding.ts';
export * from './events/compromise-signal.ts';
export * from './events/device.ts';
export * from './events/login.ts';
export * from './events/mailbox-change.ts';
export * from './events/sim-swap.ts';
export * from './field-docs.ts';
export * from './fields.ts';
export * from './fixtures.ts';
export * from './internal.ts';
export * from './normalize.ts';
export * from './shadow.ts';
export * from './signature.ts';
export * from './state.ts';
export * from './topic-names.ts';
export * from './topics.ts';
export * from './vocabulary.ts';
export * from './wire.ts';
