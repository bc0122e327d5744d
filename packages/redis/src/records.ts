import { createHash } from 'node:crypto';
import type {
  ActiveSignal,
  Authenticator,
  Binding,
  ChannelType,
  RecoveryMethod,
  SignalCode,
  SignalKind,
  SignalScope,
} from '@assurance/schemas';
import { CHANNEL_TYPES } from '@assurance/schemas';
import { Packr } from 'msgpackr';

/**
 * The stored state as TypeScript sees it: what identity-apply returns (includes/state.lua) decoded,
 * and the mutations the engine sends, encoded. docs/state.md describes the layout.
 */

/** Plain MessagePack both ways (no msgpackr records or extensions: Lua's cmsgpack reads it). */
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  int64AsType: 'number',
});

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(blob: Buffer): unknown {
  return packr.unpack(blob);
}

/**
 * Bit positions of authenticators and recovery methods in stored bindings. Append only: a stored
 * mask is read with this table, so reordering it would change what every binding means.
 */
export const AUTHENTICATOR_BITS: readonly Authenticator[] = [
  'password',
  'sms_otp',
  'voice_otp',
  'email_otp',
  'email_link',
  'totp',
  'push',
  'push_number_match',
  'passkey_synced',
  'passkey_device_bound',
  'security_key',
  'smart_card',
];
export const RECOVERY_BITS: readonly RecoveryMethod[] = [
  'email_link',
  'sms_code',
  'backup_codes',
  'helpdesk_kba',
  'helpdesk_verified_callback',
  'id_document_liveness',
  'in_person',
];

export function toMask<T>(table: readonly T[], items: readonly T[]): number {
  let mask = 0;
  for (const item of items) {
    const bit = table.indexOf(item);
    if (bit < 0) throw new Error(`no stored bit for ${String(item)}`);
    mask |= 1 << bit;
  }
  return mask;
}

export function fromMask<T>(table: readonly T[], mask: number): T[] {
  return table.filter((_, bit) => (mask & (1 << bit)) !== 0);
}

/**
 * Signal codes and SOC kinds as stored (an index into these tables). Append only: a stored id is
 * read with the table, so reordering it would change what every stored signal means.
 */
export const CODE_IDS: readonly SignalCode[] = [
  'sim_swap',
  'mailbox_tampered',
  'device_new',
  'device_compromised',
  'mfa_fatigue',
  'login_anomaly',
  'repeated_failures',
  'channel_compromised',
  'credential_compromised',
  'takeover_confirmed',
  'signal_unreadable',
];
export const KIND_IDS: readonly SignalKind[] = [
  'account_takeover',
  'sim_swap',
  'mailbox_compromise',
  'device_compromise',
  'credential_leak',
  'token_theft',
  'suspicious_activity',
];

function idOf<T>(table: readonly T[], value: T, what: string): number {
  const i = table.indexOf(value);
  if (i < 0) throw new Error(`no stored id for ${what} ${String(value)}`);
  return i;
}

/**
 * The key a (non-SOC) signal is stored under: one record per (code, scope, ref), written short
 * (the record itself holds all three): the code's id, the scope's initial, and the first 64 bits
 * of the channel ref (a keyed hash: two refs of one identity sharing them is not a practical
 * concern). Keys only need to be unique within one identity or channel.
 */
export function signalKey(code: SignalCode, scope: SignalScope, ref: string | null): string {
  return `${idOf(CODE_IDS, code, 'signal code').toString(36)}${SCOPE_MARKS[scope]}${ref === null ? '' : ref.slice(0, 16)}`;
}

const SCOPE_MARKS: Readonly<Record<SignalScope, string>> = {
  phone: 'p',
  email: 'e',
  device: 'd',
  sync_account: 's',
  identity: 'i',
  credential: 'c',
  token: 't',
};

/**
 * SOC signals are told apart by subject, signal id and kind (docs/state.md): one incident id on
 * two subjects is two signals, and a clear of one never lifts the other. `socPrefix` names every
 * kind of one id on one subject (a digest of the three: the id is caller text of up to 200
 * characters), for a clear that does not name its kind; `~` keeps SOC keys apart from the others.
 */
export function socPrefix(scope: SignalScope, ref: string | null, signalId: string): string {
  const id = createHash('sha256')
    .update(JSON.stringify([scope, ref, signalId]))
    .digest('base64url')
    .slice(0, 12);
  return `~${id}`;
}

export function socKey(scope: SignalScope, ref: string | null, signalId: string, kind: SignalKind): string {
  return `${socPrefix(scope, ref, signalId)}${idOf(KIND_IDS, kind, 'signal kind').toString(36)}`;
}

/**
 * Event ids are stored with every raise, and most producers write UUIDs: a canonical lowercase
 * UUID (36 characters) is stored as ID_MARK and its 128 bits in 22 characters of an alphabet in
 * ASCII order, so stored UUIDs sort among themselves as the originals do. Any other id is stored
 * as it is, or with a second ID_MARK in front when it starts with one, so every id reads back
 * exactly.
 */
const ID_MARK = '\u0001';
const UUID_FORM = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ORDERED64 = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';

export function storedEventId(id: string): string {
  if (UUID_FORM.test(id)) {
    // 128 bits, shifted to fill 22 six-bit digits (132 bits), most significant first.
    let n = BigInt(`0x${id.replaceAll('-', '')}`) << 4n;
    const out: string[] = new Array(22);
    for (let i = 21; i >= 0; i--) {
      out[i] = ORDERED64[Number(n & 63n)] as string;
      n >>= 6n;
    }
    return ID_MARK + out.join('');
  }
  return id.startsWith(ID_MARK) ? ID_MARK + id : id;
}

export function eventIdOf(stored: string): string {
  if (!stored.startsWith(ID_MARK)) return stored;
  if (stored.startsWith(ID_MARK, 1)) return stored.slice(1);
  if (stored.length !== 23) throw new CorruptStateError('a stored event id of an unknown form');
  let n = 0n;
  for (let i = 1; i < 23; i++) {
    const digit = ORDERED64.indexOf(stored[i] as string);
    if (digit < 0) throw new CorruptStateError('a stored event id of an unknown form');
    n = (n << 6n) | BigInt(digit);
  }
  const hex = (n >> 4n).toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

type Raise = readonly [number, number, number, string | false, Record<string, string>];

/** A mutation as the scripts take it: signal codes as their stored ids, event ids as stored. */
export function encodeMutation(m: object): object {
  const { code, ev, rs } = m as { code?: SignalCode; ev?: unknown; rs?: readonly Raise[] };
  if (code === undefined) return m;
  const out: Record<string, unknown> = { ...m, code: idOf(CODE_IDS, code, 'signal code') };
  if (typeof ev === 'string') out.ev = storedEventId(ev);
  if (rs !== undefined)
    out.rs = rs.map(([since, exp, at, id, attrs]) => [
      since,
      exp,
      at,
      id === false ? false : storedEventId(id),
      attrs,
    ]);
  return out;
}

function codeOf(v: unknown): SignalCode {
  if (typeof v === 'number') {
    const code = CODE_IDS[v];
    if (code === undefined) throw new CorruptStateError(`unknown stored signal code ${v}`);
    return code;
  }
  return v as SignalCode;
}

/** One raise standing in a signal record. */
export interface StoredRaise {
  readonly sinceMs: number;
  /** -1: until cleared. */
  readonly expiresAtMs: number;
  readonly atMs: number;
  /** The event that raised it; null for a raise that names no source (a login re-asserting a threshold). */
  readonly eventId: string | null;
  readonly attributes: Readonly<Record<string, string>>;
}

/**
 * A signal as stored (includes/state.lua): the raises still standing and the latest clear. The
 * rest is derived: `sinceMs` and `expiresAtMs` of the latest episode, `raisedMs` the newest raise
 * (null when none stands: a tombstone).
 */
export interface SignalRecord {
  readonly k: string;
  readonly code: SignalCode;
  readonly scope: SignalScope;
  readonly ref: string | null;
  readonly raises: readonly StoredRaise[];
  readonly clearedMs: number | null;
  /** The latest expiry of what the clears lifted or blocked (-1: until cleared). */
  readonly liftedMs: number;
  /** The newest raise of the latest episode's attributes. */
  readonly attributes: Readonly<Record<string, string>>;
  readonly sinceMs: number;
  readonly expiresAtMs: number;
  readonly raisedMs: number | null;
  /** The latest episode's source event ids, by time (the newest 8), and how many distinct ones it has. */
  readonly sourceEventIds: readonly string[];
  readonly sourceCount: number;
}

const later = (a: number, b: number) => (a === -1 || b === -1 ? -1 : Math.max(a, b));

/** The latest episode of a set of raises: overlapping or touching lifetimes joined. */
export function latestEpisode(
  raises: readonly StoredRaise[],
): { sinceMs: number; expiresAtMs: number } | null {
  if (raises.length === 0) return null;
  const sorted = [...raises].sort((a, b) => a.sinceMs - b.sinceMs);
  let since = (sorted[0] as StoredRaise).sinceMs;
  let exp = (sorted[0] as StoredRaise).expiresAtMs;
  for (const r of sorted.slice(1)) {
    if (exp === -1 || r.sinceMs <= exp) exp = later(exp, r.expiresAtMs);
    else {
      since = r.sinceMs;
      exp = r.expiresAtMs;
    }
  }
  return { sinceMs: since, expiresAtMs: exp };
}

export interface BindingRecord {
  readonly ref: string;
  readonly opMs: number;
  readonly bound: boolean;
  readonly channelType: ChannelType;
  readonly authenticators: readonly Authenticator[];
  readonly recovery: readonly RecoveryMethod[];
  readonly boundAtMs: number;
  readonly recoverableVia: ReadonlyArray<{ channelType: ChannelType; channelRef: string }>;
}

/** An identity's state as stored (identity-apply's answer), decoded. */
export interface IdentityRecord {
  readonly identityId: string;
  readonly tenantId: string | null;
  readonly bindingsKnown: boolean;
  /** Set once a cap was reached: the identity fails closed (nothing was dropped silently). */
  readonly overflowSinceMs: number | null;
  /** The last decision recorded (its sequence carries the store's epoch), its digest and validUntil. */
  readonly seq: number;
  readonly digest: string | null;
  readonly validUntilMs: number | null;
  /** A tag of the policy the last recorded decision was made under; null if not recorded. */
  readonly policyTag: string | null;
  /** The version of what decisions depend on, moved by every change to it. */
  readonly stateVersion: number;
  /** The state version the last recorded decision was made from; null if not recorded. */
  readonly decidedVersion: number | null;
  /** The last decision Kafka acknowledged, and its digest. */
  readonly published: number;
  readonly publishedDigest: string | null;
  /** Until when its channel memberships are kept (-1: forever), as last written to the channels. */
  readonly membershipUntilMs: number | null;
  /** When the state is forgotten, by the engine's clock (-1: never). */
  readonly horizonMs: number | null;
  readonly signals: readonly SignalRecord[];
  readonly bindings: readonly BindingRecord[];
}

type Raw = Record<string, unknown>;
const asMap = (v: unknown): Raw => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {});
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

export class CorruptStateError extends Error {
  override readonly name = 'CorruptStateError';
}

/**
 * Scopes and channel types as stored (an index into this table). Append only, and the same table
 * as SCOPES in includes/state.lua: a stored index is read with it.
 */
export const SCOPE_IDS: readonly SignalScope[] = [
  'phone',
  'email',
  'device',
  'sync_account',
  'identity',
  'credential',
  'token',
];

function scopeOf(v: unknown, what: string): SignalScope {
  const scope = typeof v === 'number' ? SCOPE_IDS[v] : undefined;
  if (scope === undefined) throw new CorruptStateError(`${what}: unknown stored scope ${String(v)}`);
  return scope;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/**
 * A stored record (includes/state.lua, "Stored form"): a raise's expiry and time are offsets from
 * its start, its expiry `false` when it lasts until cleared.
 */
function signalOf(k: string, r: unknown): SignalRecord {
  if (!Array.isArray(r) || r.length < 6)
    throw new CorruptStateError(`signal record ${k} is not a 6-item array`);
  const raises: StoredRaise[] = (Array.isArray(r[5]) ? (r[5] as unknown[]) : []).map((e) => {
    if (!Array.isArray(e) || e.length < 5 || !isInt(e[0]) || !isInt(e[2]) || !(e[1] === false || isInt(e[1])))
      throw new CorruptStateError(`signal record ${k} holds a malformed raise`);
    const since = e[0];
    return {
      sinceMs: since,
      expiresAtMs: e[1] === false ? -1 : since + e[1],
      atMs: since + e[2],
      eventId: typeof e[3] === 'string' ? eventIdOf(e[3]) : null,
      attributes: asMap(e[4]) as Record<string, string>,
    };
  });
  const episode = latestEpisode(raises);
  // The latest episode's raises: their lifetimes begin at or after its start.
  const current = episode ? raises.filter((x) => x.sinceMs >= episode.sinceMs) : [];
  // Ties in time go by the stored id, as the scripts order raises (includes/state.lua `older`).
  const tie = (x: StoredRaise) => (x.eventId === null ? 'false' : storedEventId(x.eventId));
  const byTime = [...current].sort(
    (a, b) => a.atMs - b.atMs || (tie(a) < tie(b) ? -1 : tie(a) > tie(b) ? 1 : 0),
  );
  const ids = [...new Set(byTime.flatMap((x) => (x.eventId === null ? [] : [x.eventId])))];
  return {
    k,
    code: codeOf(r[0]),
    scope: scopeOf(r[1], `signal record ${k}`),
    ref: str(r[2]),
    raises,
    clearedMs: num(r[3]),
    liftedMs: (r[4] as number) ?? 0,
    attributes: { ...(byTime.at(-1)?.attributes ?? {}) },
    sinceMs: episode?.sinceMs ?? 0,
    expiresAtMs: episode?.expiresAtMs ?? 0,
    raisedMs: byTime.at(-1)?.atMs ?? null,
    sourceEventIds: ids.slice(-8),
    sourceCount: ids.length,
  };
}

function bindingOf(ref: string, r: unknown): BindingRecord {
  if (!Array.isArray(r) || r.length < 7)
    throw new CorruptStateError(`binding record ${ref} is not a 7-item array`);
  const channelType = scopeOf(r[2], `binding ${ref}`);
  if (!(CHANNEL_TYPES as readonly string[]).includes(channelType) || !isInt(r[0]))
    throw new CorruptStateError(`binding ${ref} is malformed`);
  const opMs = r[0];
  return {
    ref,
    opMs,
    bound: r[1] === 1,
    channelType: channelType as ChannelType,
    authenticators: fromMask(AUTHENTICATOR_BITS, r[3] as number),
    recovery: fromMask(RECOVERY_BITS, r[4] as number),
    // An offset from the op time (false: none, an unbind's record).
    boundAtMs: isInt(r[5]) ? opMs + r[5] : 0,
    recoverableVia: (Array.isArray(r[6]) ? (r[6] as string[]) : []).map((v) => {
      const [channelType, channelRef] = v.split(':') as [ChannelType, string];
      return { channelType, channelRef };
    }),
  };
}

/** identity-apply's login observation: thresholds reached per kind, and device and network novelty (1, 0, -1). */
export function decodeObservation(blob: Buffer): {
  triggers: Record<string, { firstMs: number; lastMs: number; count: number; ownCount: number }>;
  device: number;
  network: number;
} {
  const o = asMap(packr.unpack(blob));
  const triggers: Record<string, { firstMs: number; lastMs: number; count: number; ownCount: number }> = {};
  for (const [kind, v] of Object.entries(asMap(o.triggers))) {
    const [firstMs, lastMs, count, ownCount] = v as [number, number, number, number];
    triggers[kind] = { firstMs, lastMs, count, ownCount };
  }
  return { triggers, device: o.device as number, network: o.network as number };
}

/** Decodes a channel's signal records (channel-bind, channel-signal). */
export function decodeSignals(blob: Buffer | null | false): SignalRecord[] {
  if (!blob) return [];
  return Object.entries(asMap(packr.unpack(blob))).map(([k, r]) => signalOf(k, r));
}

/** Decodes an identity's state; throws CorruptStateError when it is not what the scripts write. */
export function decodeIdentity(blob: Buffer): IdentityRecord {
  let raw: Raw;
  try {
    raw = asMap(packr.unpack(blob));
  } catch (err) {
    throw new CorruptStateError(`identity state is not MessagePack: ${(err as Error).message}`);
  }
  if (raw.v !== 2 || typeof raw.i !== 'string')
    throw new CorruptStateError('identity state of an unknown format');
  return {
    identityId: raw.i,
    tenantId: str(raw.t),
    bindingsKnown: raw.k === 1,
    overflowSinceMs: num(raw.x),
    seq: num(raw.q) ?? 0,
    digest: str(raw.g),
    validUntilMs: num(raw.u),
    policyTag: str(raw.pd),
    stateVersion: num(raw.sv) ?? 0,
    decidedVersion: num(raw.dv),
    published: num(raw.p) ?? 0,
    publishedDigest: str(raw.pg),
    membershipUntilMs: num(raw.tc),
    horizonMs: num(raw.h),
    signals: Object.entries(asMap(raw.s)).map(([k, r]) => signalOf(k, r)),
    bindings: Object.entries(asMap(raw.b)).map(([ref, r]) => bindingOf(ref, r)),
  };
}

/** The contract's ActiveSignal of a stored record, or undefined if cleared or expired at `nowMs`. */
export function activeSignal(r: SignalRecord, nowMs: number): ActiveSignal | undefined {
  if (r.raisedMs === null) return undefined;
  if (r.expiresAtMs !== -1 && r.expiresAtMs <= nowMs) return undefined;
  return {
    code: r.code,
    scope: r.scope,
    ref: r.ref,
    since: new Date(r.sinceMs).toISOString(),
    expiresAt: r.expiresAtMs === -1 ? null : new Date(r.expiresAtMs).toISOString(),
    sourceEventIds: [...r.sourceEventIds],
    attributes: { ...r.attributes },
  };
}

/** The contract's Binding of a stored record (bound ones only). */
export function activeBinding(b: BindingRecord): Binding | undefined {
  if (!b.bound) return undefined;
  return {
    channelType: b.channelType,
    channelRef: b.ref,
    authenticators: [...b.authenticators],
    recovery: [...b.recovery],
    boundAt: new Date(b.boundAtMs).toISOString(),
    recoverableVia: b.recoverableVia.map((v) => ({ ...v })),
  };
}
