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
 * | {fanout}:due     | zset   | "REF|generation" -> when a worker may take its next page | removed with the fan-out                 |
 * | {sweep}:due      | zset   | identityId -> next re-decision time                      | refreshed on write                       |
 * | {ops}:progress   | hash   | stage|topic|partition -> next offset|time                | none (its loss is how data loss shows)   |
 * | {ops}:recovery   | hash   | stage|topic|partition -> offset to replay up to          | none (emptied as partitions catch up)    |
 * | {ops}:dlq-unwritten | list | dead letters the broker refused (coordinates)          | 30 days                                  |
 * | {meta}:fingerprint | hash | format, prefix, channel-secret digest, policy, epoch     | none                                     |
 * | {meta}:recovery-lock | string | the engine recovering a lost store                | while it works                           |
 */
export interface KeySpace {
  readonly prefix: string;
  identity(identityId: string): string;
  channel(channelRef: string): ChannelKeys;
  readonly sweepDue: string;
  readonly fanoutDue: string;
  readonly unwrittenDeadLetters: string;
  readonly progress: string;
  readonly recovery: string;
  readonly fingerprint: string;
  readonly recoveryLock: string;
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

export function keySpace(prefix: string): KeySpace {
  if (!/^[a-z0-9:_-]{1,64}$/i.test(prefix)) throw new Error(`invalid Redis key prefix "${prefix}"`);
  return {
    prefix,
    identity: (identityId) => `${prefix}{i:${tagSafe(identityId)}}`,
    channel(channelRef) {
      const base = `${prefix}{c:${tagSafe(channelRef)}}`;
      return { signals: `${base}:s`, members: `${base}:m`, fanout: `${base}:f` };
    },
    sweepDue: `${prefix}{sweep}:due`,
    fanoutDue: `${prefix}{fanout}:due`,
    unwrittenDeadLetters: `${prefix}{ops}:dlq-unwritten`,
    progress: `${prefix}{ops}:progress`,
    recovery: `${prefix}{ops}:recovery`,
    fingerprint: `${prefix}{meta}:fingerprint`,
    recoveryLock: `${prefix}{meta}:recovery-lock`,
  };
}
