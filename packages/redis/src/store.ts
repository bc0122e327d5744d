import { AssuranceError } from '@assurance/core';
import { Cluster } from 'ioredis';
import type { RedisConnection } from './connect.ts';
import { storeError } from './errors.ts';
import type { KeySpace } from './keys.ts';
import {
  CODE_IDS,
  CorruptStateError,
  decodeIdentity,
  decodeObservation,
  decodeSignals,
  encodeMutation,
  type IdentityRecord,
  pack,
  type SignalRecord,
  unpack,
} from './records.ts';
import { commandName } from './scripts.ts';

/** What a reader must know about the store besides one identity's state (meta.ts). */
export interface StoreStatus {
  /** null: no fingerprint (a new, lost or foreign store). */
  readonly epoch: number | null;
  readonly policy: string | null;
  /** The Redis run id an engine last verified the store on (a restart since means unverified). */
  readonly verifiedRunId: string | null;
  readonly format: number | null;
  /** Partitions still being replayed after a data loss. */
  readonly recovering: number;
  /**
   * On a cluster, the run id of the primary that answered the identity's read: trusted only if it
   * is one of those the store was verified on (`verifiedRunId` joins every primary's with `+`).
   */
  readonly servedBy?: string;
}

/**
 * A channel's member: an identity bound to it, directly (`via` null) or through the sync account
 * `via` that can be recovered through it (docs/state.md, channel membership).
 */
export interface ChannelMember {
  readonly identityId: string;
  readonly via: string | null;
}

/** `=<id>` or `<via>=<id>`: refs are 32 hex digits, so the first `=` ends the via part. */
export function memberField(m: ChannelMember): string {
  if (m.via !== null && !/^[0-9a-f]{32}$/.test(m.via)) throw new Error('a via ref must be a channel ref');
  return `${m.via ?? ''}=${m.identityId}`;
}

/** A member as a fan-out reaches it: with the op time of its membership. */
export type ChannelMemberAt = ChannelMember & { opMs: number };

/** One page of a channel's fan-out (channel-fanout-step-3.lua). */
export interface FanoutPage {
  readonly generation: string;
  /** The cursor this page starts at, and the next one ('0' after the last page). */
  readonly cursor: string;
  readonly next: string;
  readonly records: SignalRecord[];
  /** The trigger of the channel event the fan-out hands on (JSON). */
  readonly trigger: string;
  readonly members: ChannelMemberAt[];
}

function fanoutEntry(channelRef: string, generation: string): string {
  return `${channelRef}|${generation}`;
}

/** Members from a script reply, as member, op time pairs from index `from`. */
function membersFrom(r: readonly Reply[], from: number): ChannelMemberAt[] {
  const members: ChannelMemberAt[] = [];
  for (let i = from; i + 1 < r.length; i += 2) {
    members.push({ ...parseMember((r[i] as Buffer).toString('utf8')), opMs: Number(r[i + 1]) });
  }
  return members;
}

export function parseMember(field: string): ChannelMember {
  const i = field.indexOf('=');
  if (i !== 0 && i !== 32) throw new CorruptStateError('channel member field of an unknown form');
  return { identityId: field.slice(i + 1), via: i === 0 ? null : field.slice(0, 32) };
}

/**
 * What one event does to a state (the scripts' input), with short field names on purpose, since
 * mutations travel on the internal topic and through Redis by the million. Defined with the
 * internal topic's schema (schemas/src/internal.ts), which validates them where they are read.
 */
import type { Mutation } from '@assurance/schemas';

export type { Mutation };

/** A login, as identity-apply records it (failures per kind, devices and networks seen). */
export interface LoginRecord {
  /**
   * What makes two logins one (docs/state.md): a digest of the event id and what the login says
   * (time, outcome, authenticator, device, network), not of the producer's `source`, so a replay
   * under another source still counts once.
   */
  readonly h: string;
  readonly at: number;
  /** The failure kinds this login counts towards (none for a success). */
  readonly kinds: readonly string[];
  /** Per counted kind: its window (ms) and the number of failures within it that raises a signal. */
  readonly windows: Readonly<Record<string, number>>;
  readonly thresholds: Readonly<Record<string, number>>;
  /** Failures kept per kind (the newest). */
  readonly cap: Readonly<Record<string, number>>;
  readonly device: string;
  readonly network: string;
  readonly success: boolean;
  /** How long devices and networks stay known, ms. */
  readonly memory: number;
}

export interface LoginObservation {
  /**
   * Per failure kind whose threshold was reached: the earliest and latest failure that reached it,
   * the count at the latest, and the count at this login if it is itself one that reached it (else 0).
   */
  readonly triggers: Readonly<
    Record<
      string,
      { readonly firstMs: number; readonly lastMs: number; readonly count: number; readonly ownCount: number }
    >
  >;
  /** True: new (the identity has known devices and this is not one); null: cannot tell. */
  readonly newDevice: boolean | null;
  readonly newNetwork: boolean | null;
}

export interface StoreOptions {
  /** How long cleared and expired records are kept, so an event arriving that late still finds them. */
  readonly keepMs: number;
  /** An identity is forgotten this long after its last event (unless a signal is open-ended). */
  readonly stateTtlMs: number;
  /** Per identity: signal records, bindings, known devices (and networks). Reaching one fails the identity closed. */
  readonly caps?: { readonly signals: number; readonly bindings: number; readonly known: number };
  /** Observes each script call's duration (for a latency histogram); script names are a closed set. */
  readonly onScript?: (script: string, seconds: number, ok: boolean) => void;
}

export const DEFAULT_CAPS = { signals: 64, bindings: 64, known: 16 } as const;

/** An identity's own signals about its devices (identity-apply: an unbind lifts them, it does not drop them). */
const OWN_CODES = [CODE_IDS.indexOf('device_new'), CODE_IDS.indexOf('device_compromised')];

type Reply = string | number | Buffer | null | Reply[];
type ScriptCall = (...args: Array<string | number | Buffer>) => Promise<Reply>;

function decodeRecord(identityId: string, blob: Buffer): IdentityRecord {
  try {
    const record = decodeIdentity(blob);
    if (record.identityId !== identityId) {
      throw new CorruptStateError(`state of ${identityId} names another identity`);
    }
    return record;
  } catch (err) {
    // Corrupt state is not something to retry or route around: stop and say so.
    throw new AssuranceError('state_corrupt', `unreadable state for an identity: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Reads identities' states and the store's status, and nothing else: what the API and the CLI need,
 * with none of the writer's options (windows, TTLs, caps) to make up.
 */
export class StateReader {
  readonly #redis: RedisConnection;
  readonly #keys: KeySpace;

  constructor(redis: RedisConnection, keys: KeySpace) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /**
   * The state of an identity, or null when none is stored or it is forgotten by `nowMs` (its
   * horizon passed, whether or not Redis has expired the key yet).
   */
  async read(identityId: string, nowMs: number): Promise<IdentityRecord | null> {
    const blob = await this.#redis.getBuffer(this.#keys.identity(identityId)).catch((err: unknown) => {
      throw storeError(err, 'read state');
    });
    if (blob === null) return null;
    const record = decodeRecord(identityId, blob);
    const h = record.horizonMs;
    return h !== null && h !== -1 && h <= nowMs ? null : record;
  }

  /**
   * The state of an identity together with the store's fingerprint and recovery status, in one
   * round trip and in this order: if the store was flushed or restarted before the state was read,
   * the fingerprint read after it shows it (docs/state.md, reading).
   */
  async #identityRead(key: string): Promise<readonly [Buffer | null, string]> {
    const fn = (this.#redis as unknown as Record<string, (k: string) => Promise<[Buffer | null, Buffer]>>)[
      `${commandName('identity-read')}Buffer`
    ];
    if (!fn)
      throw new AssuranceError('script_failed', 'Redis script identity-read is not defined on this client');
    const [blob, runId] = await fn.call(this.#redis, key);
    return [blob, runId.toString('utf8')];
  }

  async readWithStatus(
    identityId: string,
    nowMs: number,
  ): Promise<{ record: IdentityRecord | null; status: StoreStatus }> {
    const fp = this.#keys.fingerprint;
    // Separate commands, not a pipeline of their own: with auto-pipelining on (the API's client),
    // those of concurrent requests share one write to the socket, which a pipeline per request
    // does not (its writes were a third of the API's CPU at 5,000 requests/s). Redis still runs
    // each connection's commands in order.
    const key = this.#keys.identity(identityId);
    const cluster = this.#redis instanceof Cluster;
    const r = await Promise.all([
      cluster ? this.#identityRead(key) : this.#redis.getBuffer(key).then((b) => [b, undefined] as const),
      this.#redis.hmget(fp, 'epoch', 'policy', 'verified', 'format'),
      this.#redis.hlen(this.#keys.recovery),
    ]).catch((err: unknown) => {
      throw storeError(err, 'read state');
    });
    const [[blob, servedBy], fields, recovering] = r;
    const [epoch, policy, verified, format] = fields;
    const status: StoreStatus = {
      epoch: epoch === null || epoch === undefined ? null : Number(epoch),
      policy: policy ?? null,
      verifiedRunId: verified ?? null,
      format: format === null || format === undefined ? null : Number(format),
      recovering,
      ...(servedBy === undefined ? {} : { servedBy }),
    };
    if (blob === null) return { record: null, status };
    const record = decodeRecord(identityId, blob);
    const h = record.horizonMs;
    return { record: h !== null && h !== -1 && h <= nowMs ? null : record, status };
  }
}

/** Typed access to the Lua commands and keys; the only code that writes state to Redis. */
export class StateStore extends StateReader {
  readonly #redis: RedisConnection;
  readonly #keys: KeySpace;
  readonly #opts: StoreOptions;
  #rotation = 0;

  constructor(redis: RedisConnection, keys: KeySpace, opts: StoreOptions) {
    super(redis, keys);
    this.#redis = redis;
    this.#keys = keys;
    this.#opts = opts;
  }

  get keys(): KeySpace {
    return this.#keys;
  }

  get options(): StoreOptions {
    return this.#opts;
  }

  #call(name: string): ScriptCall {
    // The Buffer variant: states are MessagePack, and must come back as bytes.
    const fn = (this.#redis as unknown as Record<string, ScriptCall | undefined>)[
      `${commandName(name)}Buffer`
    ];
    if (!fn) throw new AssuranceError('script_failed', `Redis script ${name} is not defined on this client`);
    const bound = fn.bind(this.#redis);
    const observe = this.#opts.onScript;
    return async (...args) => {
      const t0 = performance.now();
      try {
        const r = await bound(...args);
        observe?.(name, (performance.now() - t0) / 1000, true);
        return r;
      } catch (err) {
        observe?.(name, (performance.now() - t0) / 1000, false);
        throw storeError(err, `script ${name}`);
      }
    };
  }

  /**
   * Applies one event's effect to an identity and returns its state, in one round trip. `changed`
   * is true only when something a decision depends on changed.
   */
  async apply(
    identityId: string,
    change: {
      readonly mutations: readonly Mutation[];
      /** The event's tenant and time: the newest event naming a tenant sets it. */
      readonly tenant?: { readonly id: string; readonly at: number } | null;
      readonly login?: LoginRecord;
      /** Records that the identity's channel memberships are now kept until this time (-1: forever). */
      readonly membershipUntilMs?: number;
      /** A membership the router just wrote (a bind) is kept until this time: the record can only come closer. */
      readonly joinedUntilMs?: number;
    },
    nowMs: number,
  ): Promise<{
    changed: boolean;
    /** null: nothing stored (a new identity the event gave nothing to keep). */
    state: IdentityRecord | null;
    observation: LoginObservation | null;
    /** When the state will be forgotten (ms; -1: never). */
    horizonMs: number;
    /** Recovery routes the identity's sync accounts no longer have (their memberships must go). */
    withdrawn: Array<{ syncRef: string; channelRef: string; opMs: number }>;
  }> {
    const payload = pack({
      m: change.mutations.map(encodeMutation),
      own: OWN_CODES,
      tenant: change.tenant ?? false,
      login: change.login ?? false,
      ...(change.membershipUntilMs === undefined ? {} : { touched: change.membershipUntilMs }),
      ...(change.joinedUntilMs === undefined ? {} : { joined: change.joinedUntilMs }),
      caps: this.#opts.caps ?? DEFAULT_CAPS,
    });
    const r = (await this.#call('identity-apply')(
      this.#keys.identity(identityId),
      identityId,
      nowMs,
      this.#opts.keepMs,
      this.#opts.stateTtlMs,
      payload,
    )) as [number, Buffer | null, Buffer | null, number, Buffer];
    let observation: LoginObservation | null = null;
    if (r[2]) {
      const o = decodeObservation(r[2]);
      const flag = (v: number) => (v === -1 ? null : v === 1);
      observation = { triggers: o.triggers, newDevice: flag(o.device), newNetwork: flag(o.network) };
    }
    const withdrawn = (unpack(r[4]) as Array<[string, string, number]>).map(
      ([syncRef, channelRef, opMs]) => ({
        syncRef,
        channelRef,
        opMs,
      }),
    );
    return {
      changed: r[0] === 1,
      state: r[1] ? decodeRecord(identityId, r[1]) : null,
      observation,
      horizonMs: r[3],
      withdrawn,
    };
  }

  /**
   * Records decision `seq` (its digest and validUntil) if the recorded sequence is still `expected`:
   * 'ok', 'moved' (another writer got there first) or 'missing' (no state).
   */
  async commit(
    identityId: string,
    expected: number,
    seq: number,
    digest: string,
    validUntilMs: number,
    /** A tag of the policy the decision was made under (IdentityRecord.policyTag). */
    policyTag = '',
    /** The state version the decision was made from (IdentityRecord.stateVersion). */
    stateVersion: number | null = null,
  ): Promise<'ok' | 'moved' | 'missing'> {
    const r = await this.#call('identity-commit')(
      this.#keys.identity(identityId),
      expected,
      seq,
      digest,
      validUntilMs,
      policyTag,
      stateVersion === null ? '' : stateVersion,
    );
    return r === 1 ? 'ok' : r === -1 ? 'moved' : 'missing';
  }

  /**
   * Kafka acknowledged decision `seq`, landed at `landed` on the decisions topic when known. `superseded`:
   * the decision standing last on the topic is older than the newest recorded one (a send that
   * outlived its partition landed late), so the newest is owed again (identity-published-1.lua).
   */
  async published(
    identityId: string,
    seq: number,
    digest: string,
    landed?: { readonly partition: number; readonly offset: string },
  ): Promise<'ok' | 'superseded'> {
    const r = await this.#call('identity-published')(
      this.#keys.identity(identityId),
      seq,
      digest,
      landed?.offset ?? '',
      landed?.partition ?? -1,
    );
    return Number(r) === 2 ? 'superseded' : 'ok';
  }

  /**
   * Records a channel-level raise or clear; returns whether it changed and the channel's members
   * (identities bound to it, directly or through a sync account recoverable through it).
   */
  /**
   * Records a raise or clear against a channel and returns the first page of its members with the
   * records to hand them (channel-signal-3.lua). When the channel has more members than a page, the
   * rest is left as a fan-out under `pending`, which the caller schedules (`scheduleFanout`) and a
   * worker walks page by page (`fanoutStep`). Without `fanout`, the signal is only recorded.
   */
  async channelSignal(
    channelRef: string,
    mutations: readonly Mutation[],
    nowMs: number,
    fanout?: { readonly pageSize: number; readonly generation: string; readonly trigger: string },
  ): Promise<{
    changed: boolean;
    records: SignalRecord[];
    members: ChannelMemberAt[];
    /** The generation of the fan-out still to do after this page, or null. */
    pending: string | null;
  }> {
    const k = this.#keys.channel(channelRef);
    const r = (await this.#call('channel-signal')(
      k.signals,
      k.members,
      k.fanout,
      nowMs,
      this.#opts.keepMs,
      pack(mutations.map(encodeMutation)),
      fanout?.pageSize ?? 0,
      fanout?.generation ?? '',
      fanout?.trigger ?? '',
    )) as Reply[];
    return {
      changed: r[0] === 1,
      records: decodeSignals((r[1] as Buffer | null) ?? null),
      pending: r[2] ? (r[2] as Buffer).toString('utf8') : null,
      members: membersFrom(r, 3),
    };
  }

  /** The next page of a channel's pending fan-out, or null when none is pending. Reads only. */
  async fanoutStep(channelRef: string, nowMs: number, pageSize: number): Promise<FanoutPage | null> {
    const k = this.#keys.channel(channelRef);
    const r = (await this.#call('channel-fanout-step')(
      k.fanout,
      k.signals,
      k.members,
      nowMs,
      pageSize,
      this.#opts.keepMs,
    )) as Reply[] | null;
    if (!r) return null;
    const text = (i: number) => (r[i] as Buffer).toString('utf8');
    return {
      generation: text(0),
      cursor: text(1),
      next: text(2),
      records: decodeSignals((r[3] as Buffer | null) ?? null),
      trigger: text(4),
      members: membersFrom(r, 5),
    };
  }

  /**
   * After a page's output is durable: moves the fan-out on, if it is still the one and at that page
   * (channel-fanout-advance-1.lua).
   */
  async fanoutAdvance(
    channelRef: string,
    page: Pick<FanoutPage, 'generation' | 'cursor' | 'next'>,
  ): Promise<'done' | 'more' | 'superseded' | 'moved'> {
    const r = await this.#call('channel-fanout-advance')(
      this.#keys.channel(channelRef).fanout,
      page.generation,
      page.cursor,
      page.next,
    );
    return (['done', 'more', 'superseded', 'moved'] as const)[Number(r)] ?? 'superseded';
  }

  /** Makes a pending fan-out due now, unless it is scheduled already (a worker may hold its lease). */
  async scheduleFanout(channelRef: string, generation: string, atMs: number): Promise<void> {
    await this.#redis
      .zadd(this.#keys.fanoutDue(channelRef), 'NX', atMs, fanoutEntry(channelRef, generation))
      .catch((err: unknown) => {
        throw storeError(err, 'schedule a fan-out');
      });
  }

  /** Claims due fan-outs for one page each, leasing them (sweep-claim-1.lua, on the fan-out queue). */
  async claimFanouts(
    nowMs: number,
    leaseMs: number,
    limit: number,
  ): Promise<Array<{ channelRef: string; generation: string }>> {
    const entries = await this.#claim(
      this.#keys.fanoutQueues,
      (entry) => this.#keys.fanoutDue(entry.slice(0, entry.lastIndexOf('|'))),
      nowMs,
      leaseMs,
      limit,
    );
    return entries.map((entry) => {
      const i = entry.lastIndexOf('|');
      return { channelRef: entry.slice(0, i), generation: entry.slice(i + 1) };
    });
  }

  /** A claimed fan-out with pages left: due again now. Gone, done or superseded: off the queue. */
  async settleFanout(channelRef: string, generation: string, more: boolean, nowMs: number): Promise<void> {
    const entry = fanoutEntry(channelRef, generation);
    const queue = this.#keys.fanoutDue(channelRef);
    const op = more ? this.#redis.zadd(queue, 'XX', nowMs, entry) : this.#redis.zrem(queue, entry);
    await op.catch((err: unknown) => {
      throw storeError(err, 'settle a fan-out');
    });
  }

  /** Fan-outs with pages still to do. */
  async fanoutBacklog(): Promise<number> {
    const counts = await Promise.all(this.#keys.fanoutQueues.map((q) => this.#redis.zcard(q))).catch(
      (err: unknown) => {
        throw storeError(err, 'count pending fan-outs');
      },
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Records a binding change (or a touch: still bound, kept until `keepUntilMs`) on the channel
   * side; returns whether it was applied and the channel's signal records, which a new binder inherits.
   */
  async channelBind(
    channelRef: string,
    member: ChannelMember,
    op: 'bound' | 'unbound' | 'touch',
    opMs: number,
    keepUntilMs: number,
    nowMs: number,
  ): Promise<{ applied: boolean; signals: SignalRecord[] }> {
    const k = this.#keys.channel(channelRef);
    const r = (await this.#call('channel-bind')(
      k.members,
      k.signals,
      memberField(member),
      op,
      opMs,
      keepUntilMs,
      nowMs,
    )) as [number, Buffer | null];
    return { applied: r[0] === 1, signals: decodeSignals(r[1]) };
  }

  /** The channel's signal records (explain, rebuild). */
  async channelSignals(channelRef: string): Promise<SignalRecord[]> {
    const blob = await this.#redis.getBuffer(this.#keys.channel(channelRef).signals).catch((err: unknown) => {
      throw storeError(err, 'read channel signals');
    });
    return decodeSignals(blob);
  }

  async schedule(identityId: string, dueMs: number | null): Promise<void> {
    await this.#call('sweep-schedule')(
      this.#keys.sweepDue(identityId),
      identityId,
      dueMs ?? -1,
      Math.ceil(this.#opts.stateTtlMs / 1000),
    );
  }

  async claimDue(nowMs: number, leaseMs: number, limit: number): Promise<string[]> {
    return this.#claim(this.#keys.sweepQueues, (id) => this.#keys.sweepDue(id), nowMs, leaseMs, limit);
  }

  /** Number of identities waiting for an expiry re-decision that is already due. */
  async dueBacklog(nowMs: number): Promise<number> {
    const counts = await Promise.all(
      this.#keys.sweepQueues.map((q) => this.#redis.zcount(q, '-inf', nowMs)),
    ).catch((err: unknown) => {
      throw storeError(err, 'count due expiries');
    });
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Claims up to `limit` due entries across a queue's shards (sweep-claim-1.lua on each), starting
   * at a shard that moves on every call so no shard waits behind the others. An entry found in the
   * unsharded queue of earlier versions moves to its shard, leased, then leaves the old queue (in
   * that order: a crash between the two fires it twice, never not at all).
   */
  async #claim(
    queues: readonly string[],
    home: (member: string) => string,
    nowMs: number,
    leaseMs: number,
    limit: number,
  ): Promise<string[]> {
    const out: string[] = [];
    const start = this.#rotation++ % queues.length;
    for (let i = 0; i < queues.length && out.length < limit; i++) {
      const queue = queues[(start + i) % queues.length] as string;
      const got = (await this.#call('sweep-claim')(queue, nowMs, leaseMs, limit - out.length)) as Buffer[];
      for (const b of got) {
        const member = b.toString('utf8');
        const to = home(member);
        if (to !== queue) {
          await this.#redis.zadd(to, nowMs + leaseMs, member).catch((err: unknown) => {
            throw storeError(err, 'move a queued entry to its shard');
          });
          await this.#redis.zrem(queue, member).catch((err: unknown) => {
            throw storeError(err, 'move a queued entry to its shard');
          });
        }
        out.push(member);
      }
    }
    return out;
  }

  /**
   * Keeps the coordinates of a dead letter the broker refused, newest first, at most 1000, for 30
   * days: the message is gone from the pipeline, and an operator must be able to find it.
   */
  async recordUnwrittenDeadLetter(entry: Readonly<Record<string, string>>): Promise<void> {
    const key = this.#keys.unwrittenDeadLetters;
    await this.#redis
      .multi()
      .lpush(key, JSON.stringify(entry))
      .ltrim(key, 0, 999)
      .expire(key, 30 * 86_400)
      .exec()
      .catch((err: unknown) => {
        throw storeError(err, 'record an unwritten dead letter');
      });
  }

  /** The dead letters the broker refused, newest first. */
  async unwrittenDeadLetters(): Promise<Array<Record<string, string>>> {
    const raw = await this.#redis.lrange(this.#keys.unwrittenDeadLetters, 0, -1).catch((err: unknown) => {
      throw storeError(err, 'read unwritten dead letters');
    });
    return raw.map((r) => JSON.parse(r) as Record<string, string>);
  }
}
