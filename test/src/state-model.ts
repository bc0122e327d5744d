import type { Policy } from '@assurance/policy';
import type {
  ActiveSignal,
  Authenticator,
  Binding,
  IdentityState,
  RecoveryMethod,
  SignalCode,
  SignalKind,
  SignalScope,
} from '@assurance/schemas';
import { AUTHENTICATORS, RECOVERY_METHODS } from '@assurance/schemas';

/**
 * The oracle of the state property test: what docs/state.md says the state must be, computed
 * directly, in memory, with none of the engine's code. It applies the distinct events of each
 * phase in the order of their times (the contract's "as if applied once, in time order"), and
 * derives an identity's channel signals from the channels it holds rather than copying them
 * around as the engine does. Where the engine and this model disagree, one of them breaks the
 * contract.
 */

export type ChannelKind = 'phone' | 'email';

/** One generated event, in the contract's terms (values, not hashes). */
export type ModelEvent = { readonly eventId: string; readonly source: string; readonly at: number } & (
  | {
      readonly kind: 'bind' | 'unbind';
      readonly id: string;
      readonly channel: { readonly type: ChannelKind; readonly value: string };
      readonly auth: readonly Authenticator[];
      readonly rec: readonly RecoveryMethod[];
      readonly tenant?: string;
    }
  | {
      readonly kind: 'bindSync' | 'unbindSync';
      readonly id: string;
      readonly sync: string;
      readonly routes: ReadonlyArray<{ readonly type: ChannelKind; readonly value: string }>;
      readonly tenant?: string;
    }
  | {
      readonly kind: 'enroll' | 'remove' | 'lost';
      readonly id: string;
      readonly device: string;
      readonly auth: readonly Authenticator[];
      readonly tenant?: string;
    }
  | { readonly kind: 'swap'; readonly phone: string; readonly swappedAt: number }
  | { readonly kind: 'mailbox'; readonly email: string }
  | {
      readonly kind: 'socRaise' | 'socClear';
      readonly subject: Subject;
      readonly signalId: string;
      readonly socKind?: SignalKind;
      readonly expiresAt?: number;
      readonly tenant?: string;
    }
  | {
      readonly kind: 'login';
      readonly id: string;
      readonly outcome: 'success' | 'failure';
      readonly authenticator: Authenticator;
      readonly device?: string;
      readonly country?: string;
      readonly tenant?: string;
    }
);

export type Subject =
  | { readonly type: 'identity'; readonly value: string }
  | { readonly type: 'phone' | 'email' | 'device'; readonly value: string }
  | { readonly type: 'credential'; readonly value: string; readonly identityId: string };

/** A signal record, by the contract's rules: the raises still standing and the latest clear. */
interface Raise {
  since: number;
  /** -1: until cleared. */
  exp: number;
  at: number;
  ev: string | null;
  attrs: Record<string, string>;
}

interface Rec {
  code: SignalCode;
  scope: SignalScope;
  ref: string | null;
  raises: Raise[];
  clearedAt: number | null;
  /** The latest expiry of what clears lifted or blocked. */
  lifted: number;
}

interface BindingRec {
  op: number;
  bound: boolean;
  type: string;
  auth: Authenticator[];
  rec: RecoveryMethod[];
  /** `<type>:<ref>` of a sync account's recovery routes. */
  via: string[];
}

interface Identity {
  bindings: Map<string, BindingRec>;
  local: Map<string, Rec>;
  known: boolean;
  tenant: { id: string; at: number } | null;
  failures: Map<string, Array<{ at: number; h: string }>>;
  devices: Map<string, number>;
  networks: Map<string, number>;
  /** The engine clock at which it was last concerned by an event. */
  touched: number;
}

const later = (a: number, b: number) => (a === -1 || b === -1 ? -1 : Math.max(a, b));

/** Lua's canonical text of an attribute table (the engine breaks equal-time ties with it). */
function canon(attrs: Record<string, string> | null): string {
  if (attrs === null) return 'boolean:false';
  const keys = Object.keys(attrs).sort();
  return `{${keys.map((k) => `${k}=string:${attrs[k]}`).join(',')}}`;
}

interface RaiseOp {
  code: SignalCode;
  scope: SignalScope;
  ref: string | null;
  since: number;
  exp: number;
  at: number;
  attrs: Record<string, string>;
  /** null: a raise that names no source (it re-asserts the signal). */
  ev: string | null;
}

const empty = (m: { code: SignalCode; scope: SignalScope; ref: string | null }): Rec => ({
  code: m.code,
  scope: m.scope,
  ref: m.ref,
  raises: [],
  clearedAt: null,
  lifted: 0,
});

const sameRaise = (a: Raise, b: Raise) =>
  a.since === b.since && a.exp === b.exp && a.at === b.at && a.ev === b.ev;

/** The raises less those the latest clear lifts; the lifted ones' expiries extend `lifted`. */
function settle(r: Rec): Rec {
  if (r.clearedAt === null) return r;
  const cleared = r.clearedAt;
  let lifted = r.lifted;
  for (const x of r.raises) if (x.at <= cleared) lifted = later(lifted, x.exp);
  return { ...r, lifted, raises: r.raises.filter((x) => x.at > cleared) };
}

function raise(r: Rec | undefined, m: RaiseOp): Rec {
  const base = r ?? empty(m);
  const x: Raise = { since: m.since, exp: m.exp, at: m.at, ev: m.ev, attrs: { ...m.attrs } };
  let raises = base.raises.some((y) => sameRaise(y, x)) ? base.raises : [...base.raises, x];
  // A raise naming no source adds nothing where the same lifetime stands with one.
  const sourced = new Set(raises.filter((y) => y.ev !== null).map((y) => `${y.since}|${y.exp}|${y.at}`));
  raises = raises.filter((y) => y.ev !== null || !sourced.has(`${y.since}|${y.exp}|${y.at}`));
  return settle({ ...base, raises });
}

function clear(
  r: Rec | undefined,
  m: { code: SignalCode; scope: SignalScope; ref: string | null; at: number; exp?: number },
): Rec {
  const base = r ?? empty(m);
  return settle({
    ...base,
    clearedAt: base.clearedAt === null ? m.at : Math.max(base.clearedAt, m.at),
    lifted: later(base.lifted, m.exp ?? 0),
  });
}

/** The latest episode of the standing raises: overlapping or touching lifetimes joined. */
function episode(r: Rec): [number, number] | null {
  if (r.raises.length === 0) return null;
  const sorted = [...r.raises].sort((a, b) => a.since - b.since);
  let cur: [number, number] = [(sorted[0] as Raise).since, (sorted[0] as Raise).exp];
  for (const x of sorted.slice(1)) {
    if (cur[1] === -1 || x.since <= cur[1]) cur[1] = later(cur[1], x.exp);
    else cur = [x.since, x.exp];
  }
  return cur;
}

/** The raises of the latest episode (it starts at `since`). */
const current = (r: Rec, since: number) => r.raises.filter((x) => x.since >= since);

/** The newest of some raises: its attributes describe the signal (equal times: by event id, then the larger). */
function newestRaise(raises: readonly Raise[]): Raise | undefined {
  let top: Raise | undefined;
  for (const x of raises) {
    // The engine orders raises by time, then by event id as Lua prints it (a raise naming no source: "false").
    const ev = (y: Raise) => y.ev ?? 'false';
    if (
      !top ||
      x.at > top.at ||
      (x.at === top.at && ev(x) > ev(top)) ||
      (x.at === top.at && x.ev === top.ev && canon(x.attrs) > canon(top.attrs))
    ) {
      top = x;
    }
  }
  return top;
}

function live(r: Rec, now: number): boolean {
  const e = episode(r);
  return e !== null && (e[1] === -1 || e[1] > now);
}

/** A record that can no longer matter at `now`: what the engine prunes (docs/state.md, raises and clears). */
function dead(r: Rec, now: number, keep: number): boolean {
  const e = episode(r);
  const raisesDead = e === null || (e[1] !== -1 && e[1] < now - keep);
  const clearDead =
    r.clearedAt === null || (r.clearedAt < now - keep && r.lifted !== -1 && r.lifted < now - keep);
  return raisesDead && clearDead;
}

/** When a record stops mattering (docs/state.md, time); -1: never. */
function recordHorizon(r: Rec, keep: number): number {
  let h = 0;
  const e = episode(r);
  if (e) {
    if (e[1] === -1) return -1;
    h = e[1] + keep;
  }
  if (r.clearedAt !== null) {
    const c = r.lifted !== -1 && r.lifted > r.clearedAt ? r.lifted : r.clearedAt;
    h = Math.max(h, c + keep);
  }
  return h;
}

const CHANNEL_SCOPES: ReadonlySet<string> = new Set(['phone', 'email', 'device', 'sync_account']);

export interface ModelOptions {
  readonly policy: Policy;
  /** The keyed hash the deployment uses for channel values (so refs compare with the engine's). */
  readonly ref: (type: string, value: string) => string;
  readonly stateTtlMs: number;
  readonly keepMs: number;
}

export class StateModel {
  readonly #o: ModelOptions;
  readonly #channels = new Map<string, Map<string, Rec>>();
  readonly #ids = new Map<string, Identity>();

  constructor(o: ModelOptions) {
    this.#o = o;
  }

  #identity(id: string, now: number): Identity {
    let x = this.#ids.get(id);
    if (!x) {
      x = {
        bindings: new Map(),
        local: new Map(),
        known: false,
        tenant: null,
        failures: new Map(),
        devices: new Map(),
        networks: new Map(),
        touched: now,
      };
      this.#ids.set(id, x);
    }
    return x;
  }

  #channel(ref: string): Map<string, Rec> {
    let c = this.#channels.get(ref);
    if (!c) {
      c = new Map();
      this.#channels.set(ref, c);
    }
    return c;
  }

  /** The channels an identity holds: bound ones, and the routes of its bound sync accounts. */
  #held(x: Identity): Set<string> {
    const out = new Set<string>();
    for (const [ref, b] of x.bindings) {
      if (!b.bound) continue;
      out.add(ref);
      for (const v of b.via) out.add(v.slice(v.indexOf(':') + 1));
    }
    return out;
  }

  /** Drops what concerns channels it let go of and no longer holds (an unbind, a dropped route). */
  #dropLetGo(x: Identity, letGo: ReadonlySet<string>): void {
    const held = this.#held(x);
    for (const [k, r] of x.local) {
      // A device's own signals are lifted by its unbind (a clear), not dropped with it.
      if (r.code === 'device_new' || r.code === 'device_compromised') continue;
      if (r.ref !== null && letGo.has(r.ref) && CHANNEL_SCOPES.has(r.scope) && !held.has(r.ref))
        x.local.delete(k);
    }
  }

  #horizon(x: Identity): number {
    let h = x.touched + this.#o.stateTtlMs;
    const records = [...x.local.values()];
    for (const ref of this.#held(x)) records.push(...(this.#channels.get(ref)?.values() ?? []));
    for (const r of records) {
      const rh = recordHorizon(r, this.#o.keepMs);
      if (rh === -1) return -1;
      h = Math.max(h, rh);
    }
    return h;
  }

  /** Identities whose horizon has passed are forgotten, wholly. */
  forget(now: number): void {
    for (const [id, x] of this.#ids) {
      const h = this.#horizon(x);
      if (h !== -1 && h <= now) this.#ids.delete(id);
    }
  }

  /**
   * One phase: the engine's clock reads `now` throughout, and `deliveries` are what was delivered
   * (duplicates and replays included). Distinct events apply once, in the order of their times.
   */
  applyPhase(now: number, deliveries: readonly ModelEvent[], skewMs: number): void {
    this.forget(now);
    const seen = new Set<string>();
    const distinct: ModelEvent[] = [];
    for (const e of deliveries) {
      // A replay under another source is the same event (docs/state.md); too far in the future is
      // not applied at all (future_event).
      const id = `${e.kind}|${e.eventId}|${e.at}`;
      if (seen.has(id) || e.at > now + skewMs) continue;
      seen.add(id);
      distinct.push(e);
    }
    // Channels with events this phase: their holders are concerned by them.
    const active = new Set<string>();
    const concerned = new Set<string>();
    for (const e of [...distinct].sort((a, b) => a.at - b.at || (a.eventId < b.eventId ? -1 : 1))) {
      const before = new Map(this.#channels.get(this.#channelOf(e) ?? '') ?? []);
      for (const id of this.#apply(e, now)) concerned.add(id);
      const ref = this.#channelOf(e);
      // A channel event concerns its holders when it leaves them a record that still matters.
      if (ref) {
        const after = this.#channels.get(ref) ?? new Map<string, Rec>();
        const touched = [...after].filter(([k, r]) => before.get(k) !== r).map(([, r]) => r);
        const same = [...after]
          .filter(([k, r]) => before.get(k) === r && this.#touches(e, k))
          .map(([, r]) => r);
        if ([...touched, ...same].some((r) => !dead(r, now, this.#o.keepMs))) active.add(ref);
      }
    }
    for (const [id, x] of this.#ids) {
      if (concerned.has(id) || [...this.#held(x)].some((ref) => active.has(ref))) x.touched = now;
    }
  }

  /** Whether event `e` names the record `k` of its channel (the records a replay hands on again). */
  #touches(e: ModelEvent, k: string): boolean {
    if (e.kind === 'swap') return k === 'sim_swap';
    if (e.kind === 'mailbox') return k === 'mailbox_tampered';
    if (e.kind === 'socRaise' || e.kind === 'socClear')
      return k.startsWith(`soc|${e.subject.type}|`) && k.includes(`|${e.signalId}|`);
    return false;
  }

  #channelOf(e: ModelEvent): string | undefined {
    const r = this.#o.ref;
    if (e.kind === 'swap') return r('phone', e.phone);
    if (e.kind === 'mailbox') return r('email', e.email);
    if (
      (e.kind === 'socRaise' || e.kind === 'socClear') &&
      ['phone', 'email', 'device'].includes(e.subject.type)
    ) {
      return r(e.subject.type, e.subject.value);
    }
    return undefined;
  }

  /** Applies one event; returns the identities it concerns directly. */
  #apply(e: ModelEvent, now: number): string[] {
    const s = this.#o.policy.signals;
    const r = this.#o.ref;
    const setTenant = (x: Identity, tenant: string | undefined) => {
      if (tenant === undefined) return;
      if (!x.tenant || e.at > x.tenant.at || (e.at === x.tenant.at && tenant > x.tenant.id)) {
        x.tenant = { id: tenant, at: e.at };
      }
    };
    const bindOp = (
      x: Identity,
      ref: string,
      bound: boolean,
      type: string,
      auth: Authenticator[],
      rec: RecoveryMethod[],
      via: string[],
    ) => {
      x.known = true;
      const cur = x.bindings.get(ref);
      const wins = !cur || e.at > cur.op || (bound && e.at === cur.op && !cur.bound);
      if (!wins) return;
      const letGo = new Set<string>(bound ? [] : [ref]);
      if (cur?.bound)
        for (const v of cur.via) if (!(bound && via.includes(v))) letGo.add(v.slice(v.indexOf(':') + 1));
      x.bindings.set(
        ref,
        bound
          ? { op: e.at, bound, type, auth, rec, via }
          : { op: e.at, bound, type: cur?.type ?? type, auth: [], rec: [], via: [] },
      );
      this.#dropLetGo(x, letGo);
    };
    // An identity's own signals about a device always apply (docs/state.md).
    const localRaise = (x: Identity, key: string, m: RaiseOp, pk?: string) => {
      const pt = pk ? x.local.get(pk) : undefined;
      if (pk && pt && pt.clearedAt !== null && pt.clearedAt >= m.at) x.local.set(pk, raise(pt, m));
      else x.local.set(key, raise(x.local.get(key), m));
    };
    switch (e.kind) {
      case 'bind':
      case 'unbind': {
        const x = this.#identity(e.id, now);
        setTenant(x, e.tenant);
        const ref = r(e.channel.type, e.channel.value);
        bindOp(x, ref, e.kind === 'bind', e.channel.type, sortAuth([...e.auth]), sortRec([...e.rec]), []);
        return [e.id];
      }
      case 'bindSync':
      case 'unbindSync': {
        const x = this.#identity(e.id, now);
        setTenant(x, e.tenant);
        const ref = r('sync_account', e.sync);
        const via = e.routes.map((c) => `${c.type}:${r(c.type, c.value)}`);
        bindOp(x, ref, e.kind === 'bindSync', 'sync_account', ['passkey_synced'], [], via);
        return [e.id];
      }
      case 'enroll':
      case 'remove':
      case 'lost': {
        const x = this.#identity(e.id, now);
        setTenant(x, e.tenant);
        const ref = r('device', e.device);
        const attrs = { change: e.kind === 'enroll' ? 'enrolled' : e.kind === 'remove' ? 'removed' : 'lost' };
        if (e.kind === 'remove') {
          bindOp(x, ref, false, 'device', [], [], []);
          // Removing a device lifts what the identity had raised about it before, as a clear does.
          for (const code of ['device_new', 'device_compromised'] as const) {
            x.local.set(
              `${code}|${ref}`,
              clear(x.local.get(`${code}|${ref}`), { code, scope: 'device', ref, at: e.at }),
            );
          }
        }
        if (e.kind === 'enroll') {
          bindOp(x, ref, true, 'device', sortAuth([...e.auth]), [], []);
          localRaise(x, `device_new|${ref}`, {
            code: 'device_new',
            scope: 'device',
            ref,
            since: e.at,
            exp: e.at + s.device_new.ttlMs,
            at: e.at,
            attrs,
            ev: e.eventId,
          });
        }
        if (e.kind === 'lost') {
          localRaise(x, `device_compromised|${ref}`, {
            code: 'device_compromised',
            scope: 'device',
            ref,
            since: e.at,
            exp: e.at + s.device_compromised.ttlMs,
            at: e.at,
            attrs,
            ev: e.eventId,
          });
        }
        return [e.id];
      }
      case 'swap': {
        const ref = r('phone', e.phone);
        const c = this.#channel(ref);
        c.set(
          'sim_swap',
          raise(c.get('sim_swap'), {
            code: 'sim_swap',
            scope: 'phone',
            ref,
            since: e.swappedAt,
            exp: e.swappedAt + s.sim_swap.windowMs,
            at: e.at,
            attrs: { changeType: 'port_out' },
            ev: e.eventId,
          }),
        );
        return [];
      }
      case 'mailbox': {
        const ref = r('email', e.email);
        const c = this.#channel(ref);
        c.set(
          'mailbox_tampered',
          raise(c.get('mailbox_tampered'), {
            code: 'mailbox_tampered',
            scope: 'email',
            ref,
            since: e.at,
            exp: e.at + s.mailbox_tampered.ttlMs,
            at: e.at,
            attrs: { change: 'inbox_rule_added' },
            ev: e.eventId,
          }),
        );
        return [];
      }
      case 'socRaise':
      case 'socClear':
        return this.#soc(e, now);
      case 'login':
        return this.#login(e, now);
    }
  }

  #soc(e: Extract<ModelEvent, { kind: 'socRaise' | 'socClear' }>, now: number): string[] {
    const s = this.#o.policy.signals;
    const r = this.#o.ref;
    const subject = e.subject;
    let scope: SignalScope;
    let ref: string | null;
    let target: Map<string, Rec>;
    let x: Identity | undefined;
    const touched: string[] = [];
    if (subject.type === 'identity') {
      scope = 'identity';
      ref = null;
      x = this.#identity(subject.value, now);
      target = x.local;
      touched.push(subject.value);
    } else if (subject.type === 'credential') {
      scope = 'credential';
      ref = r('credential', JSON.stringify([subject.identityId, subject.value]));
      x = this.#identity(subject.identityId, now);
      target = x.local;
      touched.push(subject.identityId);
    } else {
      scope = subject.type;
      ref = r(subject.type, subject.value);
      target = this.#channel(ref);
    }
    if (
      x &&
      e.tenant !== undefined &&
      (!x.tenant || e.at > x.tenant.at || (e.at === x.tenant.at && e.tenant > x.tenant.id))
    ) {
      x.tenant = { id: e.tenant, at: e.at };
    }
    const codeOf = (kind: SignalKind): SignalCode =>
      subject.type === 'identity'
        ? kind === 'account_takeover'
          ? 'takeover_confirmed'
          : 'credential_compromised'
        : subject.type === 'credential'
          ? 'credential_compromised'
          : 'channel_compromised';
    const idKey = `soc|${scope}|${ref}|${e.signalId}`;
    const pk = `${idKey}|*`;
    // The contract (docs/state.md): a SIM swap or mailbox compromise raised on an identity names a
    // code source without naming which, and is also that channel's own signal, identity-wide.
    const companionOf = (kind: SignalKind | undefined): SignalCode | undefined =>
      subject.type !== 'identity'
        ? undefined
        : kind === 'sim_swap'
          ? 'sim_swap'
          : kind === 'mailbox_compromise'
            ? 'mailbox_tampered'
            : undefined;
    if (e.kind === 'socRaise') {
      const kind = e.socKind as SignalKind;
      const code = codeOf(kind);
      const ttl =
        code === 'takeover_confirmed'
          ? s.takeover_confirmed.ttlMs
          : code === 'channel_compromised'
            ? s.channel_compromised.defaultTtlMs
            : s.credential_compromised.defaultTtlMs;
      const exp = e.expiresAt ?? (ttl === null ? -1 : e.at + ttl);
      const m: RaiseOp = {
        code,
        scope,
        ref,
        since: e.at,
        exp,
        at: e.at,
        attrs: { kind, severity: 'high', signalId: e.signalId, raisedBy: 'soc' },
        ev: e.eventId,
      };
      const companion = companionOf(kind);
      const raises: Array<[string, RaiseOp]> = [[`${idKey}|${kind}`, m]];
      if (companion) raises.push([`${idKey}|${kind}|companion`, { ...m, code: companion }]);
      for (const [k, op] of raises) {
        const pt = target.get(pk);
        if (pt && pt.clearedAt !== null && pt.clearedAt >= e.at) target.set(pk, raise(pt, op));
        else target.set(k, raise(target.get(k), op));
      }
    } else if (e.socKind !== undefined) {
      const k = `${idKey}|${e.socKind}`;
      target.set(k, clear(target.get(k), { code: codeOf(e.socKind), scope, ref, at: e.at }));
      const companion = companionOf(e.socKind as SignalKind);
      if (companion)
        target.set(
          `${k}|companion`,
          clear(target.get(`${k}|companion`), { code: companion, scope, ref, at: e.at }),
        );
    } else {
      let lifted = 0;
      for (const [k, rec] of target) {
        if (!k.startsWith(`${idKey}|`) || k === pk) continue;
        for (const x of rec.raises) if (x.at <= e.at) lifted = later(lifted, x.exp);
        target.set(k, clear(rec, { code: rec.code, scope, ref, at: e.at }));
      }
      target.set(
        pk,
        clear(target.get(pk), { code: codeOf('suspicious_activity'), scope, ref, at: e.at, exp: lifted }),
      );
    }
    // Any valid SOC word about a subject lifts an unreadable mark from before it (none are raised here).
    return touched;
  }

  #login(e: Extract<ModelEvent, { kind: 'login' }>, now: number): string[] {
    const s = this.#o.policy.signals;
    const x = this.#identity(e.id, now);
    if (
      e.tenant !== undefined &&
      (!x.tenant || e.at > x.tenant.at || (e.at === x.tenant.at && e.tenant > x.tenant.id))
    ) {
      x.tenant = { id: e.tenant, at: e.at };
    }
    const kinds: Array<{
      kind: string;
      windowMs: number;
      threshold: number;
      code: SignalCode;
      ttlMs: number;
    }> = [];
    if (e.outcome === 'failure') {
      kinds.push({
        kind: 'fail',
        windowMs: s.repeated_failures.windowMs,
        threshold: s.repeated_failures.threshold,
        code: 'repeated_failures',
        ttlMs: s.repeated_failures.ttlMs,
      });
      if ((s.mfa_fatigue.authenticators as readonly string[]).includes(e.authenticator)) {
        kinds.push({
          kind: 'mfa_fail',
          windowMs: s.mfa_fatigue.windowMs,
          threshold: s.mfa_fatigue.threshold,
          code: 'mfa_fatigue',
          ttlMs: s.mfa_fatigue.ttlMs,
        });
      }
    }
    const h = `${e.eventId}|${e.at}`;
    for (const k of kinds) {
      const list = x.failures.get(k.kind) ?? [];
      if (!list.some((f) => f.h === h)) list.push({ at: e.at, h });
      x.failures.set(k.kind, list);
      // Every failure that, counted, has `threshold` failures in the window ending at it.
      let first: number | undefined;
      let last: number | undefined;
      let count = 0;
      for (const f of list) {
        const c = list.filter((a) => a.at > f.at - k.windowMs && a.at <= f.at).length;
        if (c < k.threshold) continue;
        if (first === undefined || f.at < first) first = f.at;
        if (last === undefined || f.at > last) {
          last = f.at;
          count = c;
        }
      }
      if (first !== undefined && last !== undefined) {
        // A login that reached the threshold raises it as of itself; any other re-asserts it as of
        // the latest that did, naming no source. The engine keeps 2 × threshold failures: a count
        // reaches at most that.
        const kept = Math.max(2 * k.threshold, 4);
        const own = list.filter((a) => a.at > e.at - k.windowMs && a.at <= e.at).length;
        const reached = own >= k.threshold;
        const at = reached ? e.at : last;
        const n = reached ? own : count;
        localRaiseIdentity(x, k.code, {
          since: at,
          exp: at + k.ttlMs,
          at,
          attrs: { failures: String(Math.min(n, kept)) },
          ev: reached ? e.eventId : null,
        });
      }
    }
    const device = e.device ?? '';
    const network = e.country ? `${e.country}|?` : '';
    const at = Math.min(e.at, now);
    const novelty = (known: Map<string, number>, v: string): boolean | null => {
      const kept = [...known].filter(([, seen]) => seen >= at - s.login_anomaly.memoryMs);
      if (v === '') return null;
      if (kept.length === 0) return null;
      return !kept.some(([k]) => k === v);
    };
    const newDevice = novelty(x.devices, device);
    const newNetwork = novelty(x.networks, network);
    if (e.outcome === 'success') {
      for (const [map, v] of [
        [x.devices, device],
        [x.networks, network],
      ] as const) {
        if (v === '') continue;
        map.set(v, Math.max(map.get(v) ?? e.at, e.at));
      }
      if (newNetwork === true && (newDevice === true || !s.login_anomaly.requireNewDevice)) {
        localRaiseIdentity(x, 'login_anomaly', {
          since: e.at,
          exp: e.at + s.login_anomaly.ttlMs,
          at: e.at,
          attrs: { newDevice: String(newDevice === true) },
          ev: e.eventId,
        });
      }
    }
    return [e.id];
  }

  /** The state of an identity at `now`, as the policy sees it (toIdentityState's shape). */
  stateOf(id: string, now: number): IdentityState & { readonly exists: boolean } {
    const x = this.#ids.get(id);
    if (!x)
      return {
        identityId: id,
        tenantId: null,
        bindingsKnown: false,
        bindings: [],
        signals: [],
        exists: false,
      };
    const records = [...x.local.values()];
    for (const ref of this.#held(x)) records.push(...(this.#channels.get(ref)?.values() ?? []));
    const signals: ActiveSignal[] = records
      .filter((r) => live(r, now))
      .map((r) => {
        const [since, exp] = episode(r) as [number, number];
        return {
          code: r.code,
          scope: r.scope,
          ref: r.ref,
          since: new Date(since).toISOString(),
          expiresAt: exp === -1 ? null : new Date(exp).toISOString(),
          sourceEventIds: [
            ...new Set(current(r, since).flatMap((x) => (x.ev === null ? [] : [x.ev]))),
          ].sort(),
          attributes: { ...(newestRaise(current(r, since))?.attrs ?? {}) },
        };
      })
      .sort((a, b) =>
        `${a.code}|${a.scope}|${a.ref ?? ''}|${a.since}`.localeCompare(
          `${b.code}|${b.scope}|${b.ref ?? ''}|${b.since}`,
        ),
      );
    const bindings: Binding[] = [...x.bindings]
      .filter(([, b]) => b.bound)
      .map(([ref, b]) => ({
        channelType: b.type as Binding['channelType'],
        channelRef: ref,
        authenticators: b.auth,
        recovery: b.rec,
        boundAt: new Date(b.op).toISOString(),
        recoverableVia: b.via.map((v) => ({
          channelType: v.slice(0, v.indexOf(':')) as Binding['channelType'],
          channelRef: v.slice(v.indexOf(':') + 1),
        })),
      }))
      .sort((a, b) => a.channelRef.localeCompare(b.channelRef));
    return {
      identityId: id,
      tenantId: x.tenant?.id ?? null,
      bindingsKnown: x.known,
      bindings,
      signals,
      exists: true,
    };
  }

  identities(): string[] {
    return [...this.#ids.keys()];
  }
}

function localRaiseIdentity(
  x: Identity,
  code: SignalCode,
  m: { since: number; exp: number; at: number; attrs: Record<string, string>; ev: string | null },
): void {
  x.local.set(code, raise(x.local.get(code), { code, scope: 'identity', ref: null, ...m }));
}

/** Sets in the contract's vocabulary order (what the engine gives back). */
const sortAuth = (a: Authenticator[]) => AUTHENTICATORS.filter((x) => a.includes(x));
const sortRec = (a: RecoveryMethod[]) => RECOVERY_METHODS.filter((x) => a.includes(x));
