export { channelRef } from './channel-ref.ts';
export { storeError } from './errors.ts';
export type { ChannelKeys, IdentityKeys, KeySpace } from './keys.ts';
export { keySpace } from './keys.ts';
export { commandName, defineScripts, loadScripts, SCRIPTS_VERSION } from './scripts.ts';
export { emptyState, toIdentityState } from './state.ts';
export type { LoadedIdentity, Mutation, SignalRecord, StoreOptions } from './store.ts';
export { activeSignal, SignalStore, signalKey } from './store.ts';
