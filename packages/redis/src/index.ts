export type { RedisConnection, RedisProfile, RedisTarget } from './connect.ts';
export { createRedis, createRedisCluster, describeRedisTarget, openRedis, parseNatMap } from './connect.ts';
export { storeError } from './errors.ts';
export type { ChannelKeys, KeySpace } from './keys.ts';
export { keySpace, tagSafe } from './keys.ts';
export type { Fingerprint, ProgressEntry, ProgressShard, Seal } from './meta.ts';
export {
  EPOCH_SHIFT,
  epochOf,
  MAX_EPOCH,
  MetaStore,
  nextSequence,
  STATE_FORMAT,
  secretDigest,
} from './meta.ts';
export type { BindingRecord, IdentityRecord, SignalRecord, StoredRaise } from './records.ts';
export {
  AUTHENTICATOR_BITS,
  activeBinding,
  activeSignal,
  CODE_IDS,
  CorruptStateError,
  decodeIdentity,
  decodeSignals,
  eventIdOf,
  fromMask,
  KIND_IDS,
  latestEpisode,
  pack,
  RECOVERY_BITS,
  SCOPE_IDS,
  signalKey,
  socKey,
  socPrefix,
  storedEventId,
  toMask,
  unpack,
} from './records.ts';
export { commandName, defineScripts, loadScripts } from './scripts.ts';
export type { SourceHealthRecord } from './source-health.ts';
export { SourceHealthStore } from './source-health.ts';
export type { StoredStream } from './ssf-outbox.ts';
export { SsfTransmitStore } from './ssf-outbox.ts';
export { emptyState, toIdentityState } from './state.ts';
export type {
  ChannelMember,
  ChannelMemberAt,
  FanoutPage,
  LoginObservation,
  LoginRecord,
  Mutation,
  StoreOptions,
  StoreStatus,
} from './store.ts';
export { DEFAULT_CAPS, memberField, parseMember, StateReader, StateStore } from './store.ts';
