/**
 * Every Redis key the project writes is produced here (STYLE.md: one documented module).
 *
 * Per-identity keys share the hash tag `{i:<identityId>}` and per-channel keys `{c:<channelRef>}`,
 * so each Lua script touches a single cluster slot. Channel values never appear in keys: a
 * channel is named by its keyed hash (see channel-ref.ts). `prefix` isolates deployments and tests.
 *
 * | key                         | type   | holds                                             | TTL                |
 * |-----------------------------|--------|---------------------------------------------------|--------------------|
 * | {i:ID}:seen                 | zset   | applied event keys (dedupe)                        | identity ttl       |
 * | {i:ID}:signals              | hash   | signal records                                     | identity ttl       |
 * | {i:ID}:bindings             | hash   | channelRef -> op time, state, binding             | identity ttl       |
 * | {i:ID}:meta                 | hash   | seq, published, tenantId, bindingsKnown           | identity ttl       |
 * | {i:ID}:decision             | string | current decision JSON                             | identity ttl       |
 * | {i:ID}:outbox               | string | decision + audit awaiting publication              | identity ttl       |
 * | {i:ID}:attempts             | zset   | recent login failures by kind                      | identity ttl       |
 * | {i:ID}:devices / :networks  | hash   | devices and networks seen at successful logins     | identity ttl       |
 * | {c:REF}:seen                | zset   | applied event keys (dedupe)                        | channel ttl        |
 * | {c:REF}:signals             | hash   | live signals raised against the channel            | longest signal     |
 * | {c:REF}:members             | hash   | identityId -> op time and bound/unbound           | channel ttl        |
 * | {sweep}:due                 | zset   | identityId -> next re-decision time               | refreshed on write |
 * | {ops}:dlq-unwritten         | list   | dead letters the broker refused (coordinates)      | 30 days            |
 * | {ops}:progress              | hash   | stage|topic|partition -> next offset|time         | 30 days            |
 */
export interface KeySpace {
  readonly prefix: string;
  identity(identityId: string): IdentityKeys;
  channel(channelRef: string): ChannelKeys;
  readonly sweepDue: string;
  readonly unwrittenDeadLetters: string;
  readonly progress: string;
}

export interface IdentityKeys {
  readonly seen: string;
  readonly signals: string;
  readonly bindings: string;
  readonly meta: string;
  readonly decision: string;
  readonly outbox: string;
  readonly attempts: string;
  readonly devices: string;
  readonly networks: string;
}

export interface ChannelKeys {
  readonly seen: string;
  readonly signals: string;
  readonly members: string;
}

/** Braces would break hash-tagging, so they are escaped in ids (identity ids are opaque strings). */
function tagSafe(id: string): string {
  return id.replaceAll('{', '%7B').replaceAll('}', '%7D');
}

export function keySpace(prefix: string): KeySpace {
  if (!/^[a-z0-9:_-]{1,64}$/i.test(prefix)) throw new Error(`invalid Redis key prefix "${prefix}"`);
  return {
    prefix,
    identity(identityId) {
      const base = `${prefix}{i:${tagSafe(identityId)}}`;
      return {
        seen: `${base}:seen`,
        signals: `${base}:signals`,
        bindings: `${base}:bindings`,
        meta: `${base}:meta`,
        decision: `${base}:decision`,
        outbox: `${base}:outbox`,
        attempts: `${base}:attempts`,
        devices: `${base}:devices`,
        networks: `${base}:networks`,
      };
    },
    channel(channelRef) {
      const base = `${prefix}{c:${tagSafe(channelRef)}}`;
      return { seen: `${base}:seen`, signals: `${base}:signals`, members: `${base}:members` };
    },
    sweepDue: `${prefix}{sweep}:due`,
    unwrittenDeadLetters: `${prefix}{ops}:dlq-unwritten`,
    progress: `${prefix}{ops}:progress`,
  };
}
