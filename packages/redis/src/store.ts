import { AssuranceError } from '@assurance/core';
import type { ActiveSignal, Binding, SignalCode, SignalScope } from '@assurance/schemas';
import type { Redis } from 'ioredis';
import { storeError } from './errors.ts';
import type { KeySpace } from './keys.ts';
import { commandName } from './scripts.ts';

/** A signal as stored (see commands/includes/signal.lua). Tombstones have no `lastRaisedMs`. */
export interface SignalRecord {
  /** The field it is stored under (see signalKey). */
  readonly k: string;
  readonly code: SignalCode;
  readonly scope: SignalScope;
  readonly ref: string | null;
  readonly sinceMs?: number;
  readonly expiresAtMs?: number;
  readonly sourceEventIds?: string[];
  readonly lastRaisedMs?: number;
  readonly clearedMs?: number;
  readonly attributes?: Record<string, string>;
}

export type Mutation =
  | {
      t: 'upsert_signal';
      k: string;
      code: SignalCode;
      scope: SignalScope;
      ref: string | null;
      sinceMs: number;
      /** -1: until cleared. */
      expiresAtMs: number;
      eventId: string;
      occurredAtMs: number;
      attributes: Record<string, string>;
    }
  | {
      t: 'clear_signal';
      k: string;
      code: SignalCode;
      scope: SignalScope;
      ref: string | null;
      occurredAtMs: number;
    }
  | { t: 'clear_ref'; ref: string; occurredAtMs: number }
  | { t: 'bind'; ref: string; binding: string; occurredAtMs: number }
  | { t: 'unbind'; ref: string; occurredAtMs: number };

/** The key a signal is stored under: one record per (code, scope, ref). */
export function signalKey(code: SignalCode, scope: SignalScope, ref: string | null): string {
  return `${code}|${scope}|${ref ?? ''}`;
}

/** Turns a stored record into the contract's ActiveSignal, or undefined if cleared or expired. */
export function activeSignal(r: SignalRecord, nowMs: number): ActiveSignal | undefined {
  if (r.lastRaisedMs === undefined || r.sinceMs === undefined || r.expiresAtMs === undefined)
    return undefined;
  if (r.expiresAtMs !== -1 && r.expiresAtMs <= nowMs) return undefined;
  return {
    code: r.code,
    scope: r.scope,
    ref: r.ref,
    since: new Date(r.sinceMs).toISOString(),
    expiresAt: r.expiresAtMs === -1 ? null : new Date(r.expiresAtMs).toISOString(),
    sourceEventIds: [...(r.sourceEventIds ?? [])],
    attributes: { ...(r.attributes ?? {}) },
  };
}

export interface LoadedIdentity {
  readonly tenantId: string | null;
  readonly bindingsKnown: boolean;
  readonly bindings: Binding[];
  readonly signals: SignalRecord[];
  readonly seq: number;
  readonly published: number;
  readonly decision: string | null;
  readonly outbox: string | null;
}

export interface StoreOptions {
  /** How long replays of the same event id are recognised. */
  readonly dedupeWindowMs: number;
  /** Lifetime of per-identity and per-channel state after its last write. */
  readonly stateTtlSeconds: number;
  /** Observes each script call's duration (for a latency histogram); script names are a closed set. */
  readonly onScript?: (script: string, seconds: number, ok: boolean) => void;
}

type Reply = string | number | null | Reply[];
type ScriptCall = (...args: Array<string | number>) => Promise<Reply>;

/** Typed access to the Lua commands and keys; the only code that talks to Redis about state. */
export class SignalStore {
  readonly #redis: Redis;
  readonly #keys: KeySpace;
  readonly #opts: StoreOptions;

  constructor(redis: Redis, keys: KeySpace, opts: StoreOptions) {
    this.#redis = redis;
    this.#keys = keys;
    this.#opts = opts;
  }

  get keys(): KeySpace {
    return this.#keys;
  }

  #call(name: string): ScriptCall {
    const fn = (this.#redis as unknown as Record<string, ScriptCall | undefined>)[commandName(name)];
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

  /** Applies mutations once per event key; false when the event was seen before. */
  async applyIdentity(
    identityId: string,
    eventKey: string,
    mutations: readonly Mutation[],
    tenantId: string | null,
    nowMs: number,
  ): Promise<boolean> {
    const k = this.#keys.identity(identityId);
    const r = await this.#call('identity-apply')(
      k.seen,
      k.signals,
      k.bindings,
      k.meta,
      eventKey,
      nowMs,
      this.#opts.dedupeWindowMs,
      this.#opts.stateTtlSeconds,
      JSON.stringify(mutations),
      tenantId ?? '',
    );
    return r === 1;
  }

  async loadIdentity(identityId: string): Promise<LoadedIdentity> {
    const k = this.#keys.identity(identityId);
    const [meta, signals, bindings, decision, outbox] = await Promise.all([
      this.#redis.hgetall(k.meta),
      this.#redis.hvals(k.signals),
      this.#redis.hgetall(k.bindings),
      this.#redis.get(k.decision),
      this.#redis.get(k.outbox),
    ]).catch((err: unknown) => {
      throw storeError(err, 'load identity');
    });
    const bound: Binding[] = [];
    for (const [ref, v] of Object.entries(bindings)) {
      const m = /^(-?\d+)\|(bound|unbound)\|(.*)$/s.exec(v);
      if (m?.[2] !== 'bound') continue;
      const b = JSON.parse(m[3] as string) as Omit<Binding, 'channelRef'>;
      bound.push({ ...b, channelRef: ref });
    }
    return {
      tenantId: meta.tenantId ?? null,
      bindingsKnown: meta.bindingsKnown === '1',
      bindings: bound,
      signals: signals.map((s) => JSON.parse(s) as SignalRecord),
      seq: Number(meta.seq ?? 0),
      published: Number(meta.published ?? 0),
      decision,
      outbox,
    };
  }

  /** Records a channel-level raise/clear; returns the identities bound to the channel. */
  async channelSignal(
    channelRef: string,
    eventKey: string,
    mutations: readonly Mutation[],
    nowMs: number,
  ): Promise<{ applied: boolean; identities: string[] }> {
    const k = this.#keys.channel(channelRef);
    const r = (await this.#call('channel-signal')(
      k.seen,
      k.signals,
      k.members,
      eventKey,
      nowMs,
      this.#opts.dedupeWindowMs,
      this.#opts.stateTtlSeconds,
      JSON.stringify(mutations),
    )) as Reply[];
    return { applied: r[0] === 1, identities: r.slice(1) as string[] };
  }

  /** Records a binding change on the channel side; returns the channel's signal records. */
  async channelBind(
    channelRef: string,
    identityId: string,
    op: 'bound' | 'unbound',
    occurredAtMs: number,
  ): Promise<{ applied: boolean; signals: SignalRecord[] }> {
    const k = this.#keys.channel(channelRef);
    const r = (await this.#call('channel-bind')(
      k.members,
      k.signals,
      identityId,
      op,
      occurredAtMs,
      this.#opts.stateTtlSeconds,
    )) as Reply[];
    return {
      applied: r[0] === 1,
      signals: (r.slice(1) as string[]).map((s) => JSON.parse(s) as SignalRecord),
    };
  }

  /** Compare-and-set of the decision and its outbox entry; false when the sequence moved. */
  async commitDecision(identityId: string, expectedSeq: number, decisionJson: string, outboxJson: string) {
    const k = this.#keys.identity(identityId);
    const r = await this.#call('decision-commit')(
      k.meta,
      k.decision,
      k.outbox,
      expectedSeq,
      decisionJson,
      outboxJson,
      this.#opts.stateTtlSeconds,
    );
    return r === 1;
  }

  async ackOutbox(identityId: string, sequence: number): Promise<void> {
    const k = this.#keys.identity(identityId);
    await this.#call('outbox-ack')(k.meta, k.outbox, sequence);
  }

  async observeLogin(
    identityId: string,
    args: {
      eventKey: string;
      occurredAtMs: number;
      /** How long devices and networks stay known. */
      memoryMs: number;
      /** Every counted kind with its window. */
      windows: Readonly<Record<string, number>>;
      /** Kinds this attempt adds to. */
      record: readonly string[];
      deviceId: string | null;
      network: string | null;
      success: boolean;
    },
  ): Promise<{ newDevice: boolean | null; newNetwork: boolean | null; counts: Record<string, number> }> {
    const k = this.#keys.identity(identityId);
    const r = (await this.#call('login-observe')(
      k.attempts,
      k.devices,
      k.networks,
      args.eventKey,
      args.occurredAtMs,
      args.memoryMs,
      this.#opts.stateTtlSeconds,
      Object.entries(args.windows)
        .map(([kind, w]) => `${kind}:${w}`)
        .join(','),
      args.deviceId ?? '',
      args.network ?? '',
      args.success ? '1' : '0',
      args.record.join(','),
    )) as Reply[];
    const flag = (v: Reply | undefined) => (v === -1 ? null : v === 1);
    const counts: Record<string, number> = {};
    for (const entry of r.slice(2) as string[]) {
      const [kind, n] = entry.split('=');
      if (kind) counts[kind] = Number(n);
    }
    return { newDevice: flag(r[0]), newNetwork: flag(r[1]), counts };
  }

  async getDecision(identityId: string): Promise<string | null> {
    return this.#redis.get(this.#keys.identity(identityId).decision).catch((err: unknown) => {
      throw storeError(err, 'read decision');
    });
  }

  async schedule(identityId: string, dueMs: number | null): Promise<void> {
    await this.#call('sweep-schedule')(
      this.#keys.sweepDue,
      identityId,
      dueMs ?? -1,
      this.#opts.stateTtlSeconds,
    );
  }

  async claimDue(nowMs: number, leaseMs: number, limit: number): Promise<string[]> {
    return (await this.#call('sweep-claim')(this.#keys.sweepDue, nowMs, leaseMs, limit)) as string[];
  }

  /** Number of identities waiting for an expiry re-decision that is already due. */
  async dueBacklog(nowMs: number): Promise<number> {
    return this.#redis.zcount(this.#keys.sweepDue, '-inf', nowMs).catch((err: unknown) => {
      throw storeError(err, 'count due expiries');
    });
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

  /**
   * Where a stage has got to on one partition (the next offset it will process) and when: for
   * operators and the read path's freshness report. One small hash per deployment.
   */
  async recordProgress(stage: string, topic: string, partition: number, nextOffset: string, atMs: number) {
    const key = this.#keys.progress;
    await this.#redis
      .multi()
      .hset(key, `${stage}|${topic}|${partition}`, `${nextOffset}|${atMs}`)
      .expire(key, 30 * 86_400)
      .exec()
      .catch((err: unknown) => {
        throw storeError(err, 'record progress');
      });
  }

  /** Every stage's progress: `stage|topic|partition` → next offset and when it was recorded. */
  async progress(): Promise<
    Array<{ stage: string; topic: string; partition: number; nextOffset: string; atMs: number }>
  > {
    const raw = await this.#redis.hgetall(this.#keys.progress).catch((err: unknown) => {
      throw storeError(err, 'read progress');
    });
    return Object.entries(raw).map(([field, value]) => {
      const [stage = '', topic = '', partition = '0'] = field.split('|');
      const [nextOffset = '0', atMs = '0'] = value.split('|');
      return { stage, topic, partition: Number(partition), nextOffset, atMs: Number(atMs) };
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
