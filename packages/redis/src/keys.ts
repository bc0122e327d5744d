import { crc32 } from 'node:zlib';

/**
 * Every Redis key the project writes is produced here (STYLE.md: one documented module); the layout
 * and its guarantees are in docs/state.md.
 *
 * An identity's whole state is one key, hash-tagged `{i:<id>}`; a channel's state is two keys
 * tagged `{c:<ref>}`, so every script touches a single cluster slot. Channel values never appear
 * in keys: a channel is named by its keyed hash (see channel-ref.ts). `prefix` isolates
 * deployments and tests.
 *
 * | key              | type   | holds                                                    | expiry                                   |
 * |------------------|--------|----------------------------------------------------------|------------------------------------------|
 * | {i:ID}           | string | the identity's state (MessagePack, includes/state.lua)   | `STATE_TTL` after its last event; never while a signal is open-ended |
 * | {c:REF}:s        | string | the channel's signal records (MessagePack)               | when its longest signal stops mattering  |
 * | {c:REF}:m        | hash   | identityId -> "<opMs>|bound" or "<opMs>|unbound"          | refreshed by its members' activity       |
 * | {c:REF}:f        | hash   | the channel's fan-out still to do (generation, cursor)   | deleted after its last page              |
 * | {fanout:K}:due   | zset   | "REF|generation" -> when a worker may take its next page | removed with the fan-out                 |
 * | {sweep:K}:due    | zset   | identityId -> next re-decision time                      | refreshed on write                       |
 * | {ops}:progress   | hash   | stage|topic|partition -> next offset|time                | none (its loss is how data loss shows)   |
 * | {ops:N}:progress | hash   | the same, on every other primary of a cluster (meta.ts)  | none                                     |
 * | {ops}:recovery   | hash   | stage|topic|partition -> offset to replay up to          | none (emptied as partitions catch up)    |
 * | {ops}:dlq-unwritten | list | dead letters the broker refused (coordinates)          | 30 days                                  |
 * | {meta}:fingerprint | hash | format, prefix, channel-secret digest, policy, epoch     | none                                     |
 * | {meta}:recovery-lock | string | the engine recovering a lost store                | while it works                           |
 * | {ssf:NAME}:health | hash | a Shared Signals transmitter's stream: status, verified | none (missing reads as unknown: fail closed) |
 * | {ssf:NAME}:state:S | string | a verification state we asked NAME to echo       | the verification's deadline              |
 * | {ssf:NAME}:asking | string | the API replica asking NAME for a verification now | a minute                                 |
 * | {ssftx}:streams  | hash   | our transmitter's streams: stream id -> JSON          | none                                     |
 * | {ssftx:i:ID}     | string | what was last transmitted for identity ID              | 400 days after the last                  |
 * | {ssfq:S}:sets    | hash   | SETs waiting for stream S: jti -> token                | removed when acknowledged or dead-lettered |
 * | {ssfq:S}:due     | zset   | jti -> when it may be (re)sent                         | as above                                 |
 * | {ssfq:S}:tries   | hash   | jti -> push attempts so far                            | as above                                 |
 */
export interface KeySpace {
  readonly prefix: string;
  identity(identityId: string): string;
  channel(channelRef: string): ChannelKeys;
  /** The expiry queue shard an identity's next re-decision is scheduled in. */
  sweepDue(identityId: string): string;
  /** The fan-out queue shard a channel's pending fan-out is scheduled in. */
  fanoutDue(channelRef: string): string;
  /** Every expiry queue shard, and the unsharded queue of earlier versions (only drained now). */
  readonly sweepQueues: readonly string[];
  /** Every fan-out queue shard, and the unsharded queue of earlier versions. */
  readonly fanoutQueues: readonly string[];
  readonly unwrittenDeadLetters: string;
  readonly progress: string;
  readonly recovery: string;
  /** The copy of progress kept on a cluster's other primaries, tagged `{ops:<n>}` (meta.ts). */
  progressShard(n: number): { readonly progress: string; readonly recovery: string };
  readonly fingerprint: string;
  readonly recoveryLock: string;
  /** A Shared Signals transmitter's stream health, and its pending verification states. */
  sourceHealth(name: string): {
    readonly health: string;
    state(state: string): string;
    readonly asking: string;
  };
  /** Our own transmitter: its streams, what it last sent per identity, and each stream's outbox. */
  readonly ssfStreams: string;
  ssfLastSent(identityId: string): string;
  ssfOutbox(streamId: string): { readonly sets: string; readonly due: string; readonly tries: string };
}

export interface ChannelKeys {
  readonly signals: string;
  readonly members: string;
  readonly fanout: string;
}

/**
 * Makes an id safe inside a hash tag, injectively: `%`, `{` and `}` are percent-encoded (`%` first),
 * so two different ids can never share a key (`a{b` and `a%7Bb` stay apart).
 */
export function tagSafe(id: string): string {
  return id.replaceAll('%', '%25').replaceAll('{', '%7B').replaceAll('}', '%7D');
}

/**
 * The expiry and fan-out queues are split in this many keys, each its own slot, so that on a
 * cluster no one primary takes every engine's claims. Part of the key layout: changing it strands
 * what the old shards hold.
 */
export const QUEUE_SHARDS = 16;

function queueShard(id: string): number {
  return crc32(id) % QUEUE_SHARDS;
}

export function keySpace(prefix: string): KeySpace {
  if (!/^[a-z0-9:_-]{1,64}$/i.test(prefix)) throw new Error(`invalid Redis key prefix "${prefix}"`);
  const shards = Array.from({ length: QUEUE_SHARDS }, (_, k) => k);
  return {
    prefix,
    identity: (identityId) => `${prefix}{i:${tagSafe(identityId)}}`,
    channel(channelRef) {
      const base = `${prefix}{c:${tagSafe(channelRef)}}`;
      return { signals: `${base}:s`, members: `${base}:m`, fanout: `${base}:f` };
    },
    sweepDue: (identityId) => `${prefix}{sweep:${queueShard(identityId)}}:due`,
    fanoutDue: (channelRef) => `${prefix}{fanout:${queueShard(channelRef)}}:due`,
    sweepQueues: [...shards.map((k) => `${prefix}{sweep:${k}}:due`), `${prefix}{sweep}:due`],
    fanoutQueues: [...shards.map((k) => `${prefix}{fanout:${k}}:due`), `${prefix}{fanout}:due`],
    unwrittenDeadLetters: `${prefix}{ops}:dlq-unwritten`,
    progress: `${prefix}{ops}:progress`,
    recovery: `${prefix}{ops}:recovery`,
    progressShard: (n) => ({
      progress: `${prefix}{ops:${n}}:progress`,
      recovery: `${prefix}{ops:${n}}:recovery`,
    }),
    fingerprint: `${prefix}{meta}:fingerprint`,
    recoveryLock: `${prefix}{meta}:recovery-lock`,
    ssfStreams: `${prefix}{ssftx}:streams`,
    ssfLastSent: (identityId) => `${prefix}{ssftx:i:${tagSafe(identityId)}}`,
    ssfOutbox(streamId) {
      const base = `${prefix}{ssfq:${tagSafe(streamId)}}`;
      return { sets: `${base}:sets`, due: `${base}:due`, tries: `${base}:tries` };
    },
    sourceHealth(name) {
      const base = `${prefix}{ssf:${tagSafe(name)}}`;
      return {
        health: `${base}:health`,
        state: (state) => `${base}:state:${state}`,
        asking: `${base}:asking`,
      };
    },
  };
}
