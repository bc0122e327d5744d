import type { Policy } from '@assurance/policy';
import type { Mutation, SignalRecord } from '@assurance/redis';
import { AUTHENTICATOR_BITS, RECOVERY_BITS, signalKey, socKey, socPrefix, toMask } from '@assurance/redis';
import type {
  ChannelBindingEvent,
  CompromiseSignalEvent,
  DeviceEvent,
  LoginEvent,
  MailboxChangeEvent,
  SignalCode,
  SignalKind,
  SignalScope,
  SimSwapEvent,
  Trigger,
} from '@assurance/schemas';
import { credentialOwner, normalizeSubjectValue, SubjectType } from '@assurance/schemas';

/** The policy's signal settings (lifetimes, windows, thresholds), read-only. */
export type SignalSettings = Policy['signals'];

/**
 * Pure mapping from a validated input event to what the router must do. Keeping it free of I/O
 * makes every routing rule a table test (behaviours 2, 3, 5, 8 and 10 of docs/policy-behaviours.md
 * start here). What identifies a signal, and so what a replay or a clear can touch, is decided
 * here: docs/state.md, "what identifies a signal".
 */

/** Keyed hash of a normalized channel value (HMAC; see packages/redis/src/channel-ref.ts). */
export type HashFn = (kind: string, value: string) => string;

export interface DeriveContext {
  readonly settings: SignalSettings;
  readonly hash: HashFn;
  readonly trigger: Trigger;
  readonly tenantId: string | null;
  /** The engine's clock when the event was routed: marks the engine makes itself carry this time. */
  readonly nowMs: number;
}

export type Plan =
  /** Apply these mutations to one identity. */
  | { readonly kind: 'identity'; readonly identityId: string; readonly mutations: Mutation[] }
  /** Record a raise/clear on a channel and fan it out to every identity holding it. */
  | { readonly kind: 'channel'; readonly channelRef: string; readonly mutations: Mutation[] }
  /**
   * An identity binds or unbinds a channel: record membership on the channel side (and on the
   * channels a sync account recovers through, `routes`), then apply `mutations` plus the live
   * signals of those channels (inherited) to the identity.
   */
  | {
      readonly kind: 'binding';
      readonly identityId: string;
      readonly channelRef: string;
      readonly op: 'bound' | 'unbound';
      readonly occurredAtMs: number;
      readonly routes: readonly string[];
      readonly mutations: Mutation[];
    }
  | { readonly kind: 'login'; readonly identityId: string; readonly event: LoginEvent }
  /** Nothing to change (e.g. a mailbox change the policy does not count). */
  | { readonly kind: 'none'; readonly reason: string };

const ms = (iso: string) => Date.parse(iso);

interface RaiseArgs {
  readonly code: SignalCode;
  readonly scope: SignalScope;
  readonly ref: string | null;
  readonly sinceMs: number;
  /** -1: until cleared. */
  readonly expiresAtMs: number;
  /** When the raise happened (orders it against clears). */
  readonly atMs: number;
  readonly k?: string;
  readonly pk?: string;
}

function raise(ctx: DeriveContext, s: RaiseArgs, attributes: Record<string, string>): Mutation {
  return {
    t: 'r',
    k: s.k ?? signalKey(s.code, s.scope, s.ref),
    code: s.code,
    scope: s.scope,
    ref: s.ref,
    since: s.sinceMs,
    exp: s.expiresAtMs,
    ev: ctx.trigger.eventId,
    at: s.atMs,
    attrs: attributes,
    ...(s.pk === undefined ? {} : { pk: s.pk }),
  };
}

function defined(o: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined));
}

export function deriveSimSwap(e: SimSwapEvent, ctx: DeriveContext): Plan {
  const s = ctx.settings.sim_swap;
  if (!s.changeTypes.includes(e.changeType))
    return { kind: 'none', reason: `sim change ${e.changeType} not counted` };
  const since = ms(e.swappedAt);
  const ref = ctx.hash('phone', e.phoneNumber);
  return {
    kind: 'channel',
    channelRef: ref,
    mutations: [
      raise(
        ctx,
        {
          code: 'sim_swap',
          scope: 'phone',
          ref,
          sinceMs: since,
          expiresAtMs: since + s.windowMs,
          atMs: ms(e.occurredAt),
        },
        defined({ changeType: e.changeType, carrier: e.carrier }),
      ),
    ],
  };
}

export function deriveMailboxChange(e: MailboxChangeEvent, ctx: DeriveContext): Plan {
  const s = ctx.settings.mailbox_tampered;
  const mode = s.changes[e.change];
  const counts =
    mode === 'always' ||
    (mode === 'external_or_unknown' && e.external !== false) ||
    (mode === 'external_only' && e.external === true);
  if (!counts) return { kind: 'none', reason: `mailbox change ${e.change} not counted (${mode})` };
  const ref = ctx.hash('email', e.mailbox);
  const since = ms(e.occurredAt);
  return {
    kind: 'channel',
    channelRef: ref,
    mutations: [
      raise(
        ctx,
        {
          code: 'mailbox_tampered',
          scope: 'email',
          ref,
          sinceMs: since,
          expiresAtMs: since + s.ttlMs,
          atMs: since,
        },
        defined({ change: e.change, external: e.external === undefined ? undefined : String(e.external) }),
      ),
    ],
  };
}

export function deriveChannelBinding(e: ChannelBindingEvent, ctx: DeriveContext): Plan {
  const ref = ctx.hash(e.channel.type, e.channel.value);
  const at = ms(e.occurredAt);
  const routes = (e.recoverableVia ?? []).map((c) => ({ type: c.type, ref: ctx.hash(c.type, c.value) }));
  const mutations: Mutation[] =
    e.op === 'bound'
      ? [
          {
            t: 'b',
            ref,
            at,
            type: e.channel.type,
            auth: toMask(AUTHENTICATOR_BITS, e.uses.authenticators),
            rec: toMask(RECOVERY_BITS, e.uses.recovery),
            bat: at,
            ...(routes.length > 0 ? { via: routes.map((r) => `${r.type}:${r.ref}`) } : {}),
          },
        ]
      : [{ t: 'u', ref, at, type: e.channel.type }];
  return {
    kind: 'binding',
    identityId: e.identityId,
    channelRef: ref,
    op: e.op,
    occurredAtMs: at,
    routes: routes.map((r) => r.ref),
    mutations,
  };
}

export function deriveDevice(e: DeviceEvent, ctx: DeriveContext): Plan {
  const ref = ctx.hash('device', e.deviceId);
  const at = ms(e.occurredAt);
  const attrs = defined({
    change: e.change,
    managed: e.managed === undefined ? undefined : String(e.managed),
    hardwareBacked: e.hardwareBacked === undefined ? undefined : String(e.hardwareBacked),
  });
  const binding = (op: 'bound' | 'unbound', mutations: Mutation[]): Plan => ({
    kind: 'binding',
    identityId: e.identityId,
    channelRef: ref,
    op,
    occurredAtMs: at,
    routes: [],
    mutations,
  });
  if (e.change === 'removed') {
    // Removing a device lifts the signals the identity had about it, as a clear would: those raised
    // before it go, whatever order they arrive in; a report after it stands.
    const lift = (code: SignalCode): Mutation => ({
      t: 'c',
      k: signalKey(code, 'device', ref),
      code,
      scope: 'device',
      ref,
      at,
    });
    return binding('unbound', [
      { t: 'u', ref, at, type: 'device' },
      lift('device_new'),
      lift('device_compromised'),
    ]);
  }
  const mutations: Mutation[] = [];
  if (e.change === 'enrolled') {
    mutations.push({
      t: 'b',
      ref,
      at,
      type: 'device',
      auth: toMask(AUTHENTICATOR_BITS, e.authenticators ?? []),
      rec: 0,
      bat: at,
    });
    mutations.push(
      raise(
        ctx,
        {
          code: 'device_new',
          scope: 'device',
          ref,
          sinceMs: at,
          expiresAtMs: at + ctx.settings.device_new.ttlMs,
          atMs: at,
        },
        attrs,
      ),
    );
  }
  if (ctx.settings.device_compromised.changes.includes(e.change)) {
    mutations.push(
      raise(
        ctx,
        {
          code: 'device_compromised',
          scope: 'device',
          ref,
          sinceMs: at,
          expiresAtMs: at + ctx.settings.device_compromised.ttlMs,
          atMs: at,
        },
        attrs,
      ),
    );
  }
  if (mutations.length === 0) return { kind: 'none', reason: `device change ${e.change} not counted` };
  // Only an enrolment makes the identity hold the device (and a member of its channel); a device
  // reported lost or compromised is marked on the identity that reported it.
  return e.change === 'enrolled'
    ? binding('bound', mutations)
    : { kind: 'identity', identityId: e.identityId, mutations };
}

export class RoutingError extends Error {
  override readonly name = 'RoutingError';
}

/** The code a SOC signal of `kind` on `type` is kept as. */
function socCode(type: SubjectType, kind: SignalKind): SignalCode {
  switch (type) {
    case 'identity':
      return kind === 'account_takeover' ? 'takeover_confirmed' : 'credential_compromised';
    case 'phone':
    case 'email':
    case 'device':
      return 'channel_compromised';
    case 'credential':
    case 'token':
      return 'credential_compromised';
  }
}

/**
 * A SOC signal on an identity that names a code source without naming which (a SIM swap, a
 * mailbox compromise, "somewhere": a Shared Signals transmitter tells us the identity's phone-sms
 * credential is compromised, not its number) is also kept as the channel signal itself, identity
 * wide: the policy's rules for it then exclude every SMS or email factor of the identity, since none
 * can be told apart from the one under suspicion. Its key is the SOC key with this mark.
 */
const COMPANION: Partial<Record<SignalKind, SignalCode>> = {
  sim_swap: 'sim_swap',
  mailbox_compromise: 'mailbox_tampered',
};
export const COMPANION_MARK = '!';

/**
 * A SOC raise or clear. Its signal is identified by subject, signal id and kind (docs/state.md): one
 * incident id raised on two subjects, or as two kinds, is two signals, and a clear lifts only what
 * it names. A clear without a kind lifts every kind raised under that id on that subject, and
 * blocks a late raise of any of them.
 */
export function deriveCompromiseSignal(e: CompromiseSignalEvent, ctx: DeriveContext): Plan {
  const { type } = e.subject;
  const at = ms(e.occurredAt);
  let scope: SignalScope;
  let ref: string | null;
  let target: { kind: 'identity'; identityId: string } | { kind: 'channel'; channelRef: string };
  switch (type) {
    case 'identity':
      scope = 'identity';
      ref = null;
      target = { kind: 'identity', identityId: e.subject.value };
      break;
    case 'phone':
    case 'email':
    case 'device':
      scope = type;
      ref = ctx.hash(type, e.subject.value);
      target = { kind: 'channel', channelRef: ref };
      break;
    case 'credential':
    case 'token': {
      const owner = credentialOwner(e.subject);
      if (!owner) throw new RoutingError(`${type} subject names no identity`);
      scope = type;
      // Hashed as a pair, so no choice of ids makes two different credentials one.
      ref = ctx.hash(type, JSON.stringify([owner.identityId, owner.reference]));
      target = { kind: 'identity', identityId: owner.identityId };
      break;
    }
    default: {
      const unreachable: never = type;
      throw new RoutingError(`unknown subject type ${String(unreachable)}`);
    }
  }
  const prefix = socPrefix(scope, ref, e.signalId);
  const companion = type === 'identity' && e.kind !== undefined ? COMPANION[e.kind] : undefined;
  const extra: Mutation[] = [];
  let m: Mutation;
  if (e.op === 'raise') {
    const code = socCode(type, e.kind);
    const defaultTtl =
      code === 'takeover_confirmed'
        ? ctx.settings.takeover_confirmed.ttlMs
        : code === 'channel_compromised'
          ? ctx.settings.channel_compromised.defaultTtlMs
          : ctx.settings.credential_compromised.defaultTtlMs;
    const expiresAtMs = e.expiresAt ? ms(e.expiresAt) : defaultTtl === null ? -1 : at + defaultTtl;
    const args = {
      k: socKey(scope, ref, e.signalId, e.kind),
      pk: `${prefix}*`,
      code,
      scope,
      ref,
      sinceMs: at,
      expiresAtMs,
      atMs: at,
    };
    const attrs = defined({ kind: e.kind, severity: e.severity, signalId: e.signalId, raisedBy: e.raisedBy });
    m = raise(ctx, args, attrs);
    if (companion)
      extra.push(raise(ctx, { ...args, k: `${args.k}${COMPANION_MARK}`, code: companion }, attrs));
  } else if (e.kind !== undefined) {
    const clear = {
      t: 'c',
      k: socKey(scope, ref, e.signalId, e.kind),
      code: socCode(type, e.kind),
      scope,
      ref,
      at,
    } as const;
    m = clear;
    if (companion) extra.push({ ...clear, k: `${clear.k}${COMPANION_MARK}`, code: companion });
  } else {
    m = { t: 'cp', p: prefix, code: socCode(type, 'suspicious_activity'), scope, ref, at };
  }
  // Any valid word from the SOC about a subject supersedes an unreadable one received before it.
  const unpoison: Mutation = {
    t: 'c',
    k: signalKey('signal_unreadable', scope, ref),
    code: 'signal_unreadable',
    scope,
    ref,
    at,
  };
  const mutations = type === 'credential' || type === 'token' ? [m] : [m, ...extra, unpoison];
  return target.kind === 'identity'
    ? { kind: 'identity', identityId: target.identityId, mutations }
    : { kind: 'channel', channelRef: target.channelRef, mutations };
}

/**
 * The mark a subject gets when a message about it could not be read or applied: `signal_unreadable`
 * from now for the policy's lifetime, so it fails closed until a valid event about it arrives.
 */
export function unreadableMutation(
  settings: SignalSettings,
  scope: SignalScope,
  ref: string | null,
  eventId: string,
  nowMs: number,
): Mutation {
  return {
    t: 'r',
    k: signalKey('signal_unreadable', scope, ref),
    code: 'signal_unreadable',
    scope,
    ref,
    since: nowMs,
    exp: nowMs + settings.signal_unreadable.ttlMs,
    ev: eventId,
    at: nowMs,
    attrs: { reason: 'dead_lettered' },
  };
}

/**
 * A message we could not read, whose subject we can still tell from its key: the subject fails
 * closed (signal_unreadable) until a valid signal or clear about it arrives. The key's value is
 * normalized as the event's would be, or the mark would land on a channel nobody is bound to.
 */
export function derivePoisonedSignal(
  subjectType: string,
  subjectValue: string,
  ctx: DeriveContext,
): Plan | undefined {
  const type = SubjectType.safeParse(subjectType);
  if (!type.success) return undefined;
  const normalized = normalizeSubjectValue(type.data, subjectValue);
  if (!normalized.ok) return undefined;
  const value = normalized.value;
  const mark = (scope: SignalScope, ref: string | null) =>
    unreadableMutation(ctx.settings, scope, ref, ctx.trigger.eventId, ctx.nowMs);
  switch (type.data) {
    case 'identity':
      return { kind: 'identity', identityId: value, mutations: [mark('identity', null)] };
    case 'phone':
    case 'email':
    case 'device': {
      const ref = ctx.hash(type.data, value);
      return { kind: 'channel', channelRef: ref, mutations: [mark(type.data, ref)] };
    }
    default:
      return undefined;
  }
}

/**
 * A channel's signal records as mutations for the identities that hold it: when one comes to hold
 * it (all records), and after each channel event (the records it touched). Members merge the
 * channel's records, not the events, so each member's copy is the channel's, episodes and lifted
 * expiries included, whatever order it heard things in.
 */
export function recordMutations(records: readonly SignalRecord[]): Mutation[] {
  return records.map((r) => ({
    t: 'm',
    k: r.k,
    code: r.code,
    scope: r.scope,
    ref: r.ref,
    cl: r.clearedMs ?? false,
    lf: r.liftedMs,
    rs: r.raises.map(
      (x) => [x.sinceMs, x.expiresAtMs, x.atMs, x.eventId ?? false, { ...x.attributes }] as const,
    ),
  }));
}
