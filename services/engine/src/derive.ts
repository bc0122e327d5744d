import type { Policy } from '@assurance/policy';
import type { Mutation, SignalRecord } from '@assurance/redis';
import { signalKey } from '@assurance/redis';
import type {
  ChannelBindingEvent,
  CompromiseSignalEvent,
  DeviceEvent,
  LoginEvent,
  MailboxChangeEvent,
  SignalCode,
  SignalScope,
  SimSwapEvent,
  Trigger,
} from '@assurance/schemas';
import { normalizeSubjectValue, SubjectType } from '@assurance/schemas';

/** The policy's signal settings (lifetimes, windows, thresholds), read-only. */
export type SignalSettings = Policy['signals'];

/**
 * Pure mapping from a validated input event to what the router must do. Keeping it free of I/O
 * makes every routing rule a table test (behaviours 2, 3, 5, 8 and 10 of docs/policy-behaviours.md
 * start here).
 */

/** Keyed hash of a normalized channel value (HMAC; see packages/redis/src/channel-ref.ts). */
export type HashFn = (kind: string, value: string) => string;

export interface DeriveContext {
  readonly settings: SignalSettings;
  readonly hash: HashFn;
  readonly trigger: Trigger;
  readonly eventKey: string;
  readonly tenantId: string | null;
}

export type Plan =
  /** Apply these mutations to one identity. */
  | { readonly kind: 'identity'; readonly identityId: string; readonly mutations: Mutation[] }
  /** Record a raise/clear on a channel and fan it out to every identity bound to it. */
  | { readonly kind: 'channel'; readonly channelRef: string; readonly mutations: Mutation[] }
  /**
   * An identity binds or unbinds a channel: record membership on the channel side, then apply
   * `mutations` plus the channel's live signals (inherited) to the identity.
   */
  | {
      readonly kind: 'binding';
      readonly identityId: string;
      readonly channelRef: string;
      readonly op: 'bound' | 'unbound';
      readonly occurredAtMs: number;
      readonly mutations: Mutation[];
    }
  | { readonly kind: 'login'; readonly identityId: string; readonly event: LoginEvent }
  /** Nothing to change (e.g. a mailbox change the policy does not count); still deduplicated. */
  | { readonly kind: 'none'; readonly reason: string };

const ms = (iso: string) => Date.parse(iso);

function upsert(
  ctx: DeriveContext,
  s: {
    code: SignalCode;
    scope: SignalScope;
    ref: string | null;
    sinceMs: number;
    expiresAtMs: number;
    k?: string;
  },
  attributes: Record<string, string>,
): Mutation {
  return {
    t: 'upsert_signal',
    k: s.k ?? signalKey(s.code, s.scope, s.ref),
    code: s.code,
    scope: s.scope,
    ref: s.ref,
    sinceMs: s.sinceMs,
    expiresAtMs: s.expiresAtMs,
    eventId: ctx.trigger.eventId,
    occurredAtMs: ms(ctx.trigger.occurredAt),
    attributes,
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
  return {
    kind: 'channel',
    channelRef: ctx.hash('phone', e.phoneNumber),
    mutations: [
      upsert(
        ctx,
        {
          code: 'sim_swap',
          scope: 'phone',
          ref: ctx.hash('phone', e.phoneNumber),
          sinceMs: since,
          expiresAtMs: since + s.windowMs,
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
      upsert(
        ctx,
        { code: 'mailbox_tampered', scope: 'email', ref, sinceMs: since, expiresAtMs: since + s.ttlMs },
        defined({ change: e.change, external: e.external === undefined ? undefined : String(e.external) }),
      ),
    ],
  };
}

/** The binding record stored per identity and channel (channel values never leave this function hashed). */
function bindingJson(e: ChannelBindingEvent, ctx: DeriveContext): string {
  return JSON.stringify({
    channelType: e.channel.type,
    authenticators: [...e.uses.authenticators].sort(),
    recovery: [...e.uses.recovery].sort(),
    boundAt: e.occurredAt,
    recoverableVia: (e.recoverableVia ?? []).map((c) => ({
      channelType: c.type,
      channelRef: ctx.hash(c.type, c.value),
    })),
  });
}

export function deriveChannelBinding(e: ChannelBindingEvent, ctx: DeriveContext): Plan {
  const ref = ctx.hash(e.channel.type, e.channel.value);
  const at = ms(e.occurredAt);
  const mutations: Mutation[] =
    e.op === 'bound'
      ? [{ t: 'bind', ref, binding: bindingJson(e, ctx), occurredAtMs: at }]
      : [
          { t: 'unbind', ref, occurredAtMs: at },
          { t: 'clear_ref', ref, occurredAtMs: at },
        ];
  return {
    kind: 'binding',
    identityId: e.identityId,
    channelRef: ref,
    op: e.op,
    occurredAtMs: at,
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
  const binding = (authenticators: readonly string[]) =>
    JSON.stringify({
      channelType: 'device',
      authenticators: [...authenticators].sort(),
      recovery: [],
      boundAt: e.occurredAt,
      recoverableVia: [],
    });
  if (e.change === 'removed') {
    return {
      kind: 'binding',
      identityId: e.identityId,
      channelRef: ref,
      op: 'unbound',
      occurredAtMs: at,
      mutations: [
        { t: 'unbind', ref, occurredAtMs: at },
        { t: 'clear_ref', ref, occurredAtMs: at },
      ],
    };
  }
  const mutations: Mutation[] = [];
  if (e.change === 'enrolled') {
    mutations.push({ t: 'bind', ref, binding: binding(e.authenticators ?? []), occurredAtMs: at });
    mutations.push(
      upsert(
        ctx,
        {
          code: 'device_new',
          scope: 'device',
          ref,
          sinceMs: at,
          expiresAtMs: at + ctx.settings.device_new.ttlMs,
        },
        attrs,
      ),
    );
  }
  if (ctx.settings.device_compromised.changes.includes(e.change)) {
    mutations.push(
      upsert(
        ctx,
        {
          code: 'device_compromised',
          scope: 'device',
          ref,
          sinceMs: at,
          expiresAtMs: at + ctx.settings.device_compromised.ttlMs,
        },
        attrs,
      ),
    );
  }
  if (mutations.length === 0) return { kind: 'identity', identityId: e.identityId, mutations };
  return {
    kind: 'binding',
    identityId: e.identityId,
    channelRef: ref,
    op: 'bound',
    occurredAtMs: at,
    mutations,
  };
}

/** `credential` and `token` subjects name their identity as `<identityId>/<credential id>`. */
export function credentialOwner(value: string): string | undefined {
  const i = value.indexOf('/');
  return i > 0 ? value.slice(0, i) : undefined;
}

export class RoutingError extends Error {
  override readonly name = 'RoutingError';
}

export function deriveCompromiseSignal(e: CompromiseSignalEvent, ctx: DeriveContext): Plan {
  const { type, value } = e.subject;
  const k = `soc|${e.signalId}`;
  const at = ms(e.occurredAt);
  const clearOf = (code: SignalCode, scope: SignalScope, ref: string | null): Mutation => ({
    t: 'clear_signal',
    k,
    code,
    scope,
    ref,
    occurredAtMs: at,
  });
  const raiseOf = (
    code: SignalCode,
    scope: SignalScope,
    ref: string | null,
    defaultTtlMs: number | null,
  ): Mutation => {
    if (e.op !== 'raise') throw new Error('unreachable');
    const expiresAtMs = e.expiresAt ? ms(e.expiresAt) : defaultTtlMs === null ? -1 : at + defaultTtlMs;
    return upsert(
      ctx,
      { k, code, scope, ref, sinceMs: at, expiresAtMs },
      defined({ kind: e.kind, severity: e.severity, signalId: e.signalId, raisedBy: e.raisedBy }),
    );
  };
  // Any valid word from the SOC about a subject supersedes an earlier unreadable one.
  const unpoison = (scope: SignalScope, ref: string | null): Mutation => ({
    t: 'clear_signal',
    k: signalKey('signal_unreadable', scope, ref),
    code: 'signal_unreadable',
    scope,
    ref,
    occurredAtMs: Date.now(),
  });
  const s = ctx.settings;
  switch (type) {
    case 'identity': {
      const code: SignalCode =
        e.op === 'raise' && e.kind !== 'account_takeover' ? 'credential_compromised' : 'takeover_confirmed';
      const m =
        e.op === 'raise'
          ? raiseOf(
              code,
              'identity',
              null,
              code === 'takeover_confirmed'
                ? s.takeover_confirmed.ttlMs
                : s.credential_compromised.defaultTtlMs,
            )
          : clearOf(code, 'identity', null);
      return { kind: 'identity', identityId: value, mutations: [m, unpoison('identity', null)] };
    }
    case 'phone':
    case 'email':
    case 'device': {
      const ref = ctx.hash(type, value);
      const m =
        e.op === 'raise'
          ? raiseOf('channel_compromised', type, ref, s.channel_compromised.defaultTtlMs)
          : clearOf('channel_compromised', type, ref);
      return { kind: 'channel', channelRef: ref, mutations: [m, unpoison(type, ref)] };
    }
    case 'credential':
    case 'token': {
      const owner = credentialOwner(value);
      if (!owner) throw new RoutingError(`${type} subject must read "<identityId>/<id>" to be routed`);
      const ref = ctx.hash(type, value);
      const m =
        e.op === 'raise'
          ? raiseOf('credential_compromised', type, ref, s.credential_compromised.defaultTtlMs)
          : clearOf('credential_compromised', type, ref);
      return { kind: 'identity', identityId: owner, mutations: [m] };
    }
    default: {
      const unreachable: never = type;
      throw new RoutingError(`unknown subject type ${String(unreachable)}`);
    }
  }
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
    t: 'upsert_signal',
    k: signalKey('signal_unreadable', scope, ref),
    code: 'signal_unreadable',
    scope,
    ref,
    sinceMs: nowMs,
    expiresAtMs: nowMs + settings.signal_unreadable.ttlMs,
    eventId,
    occurredAtMs: nowMs,
    attributes: { reason: 'dead_lettered' },
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
  const nowMs = Date.now();
  const mark = (scope: SignalScope, ref: string | null) =>
    unreadableMutation(ctx.settings, scope, ref, ctx.trigger.eventId, nowMs);
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

/** Channel signal records a late binder inherits, as mutations for its own state. */
export function inheritedMutations(records: readonly SignalRecord[]): Mutation[] {
  const out: Mutation[] = [];
  for (const r of records) {
    if (r.lastRaisedMs !== undefined && r.sinceMs !== undefined && r.expiresAtMs !== undefined) {
      out.push({
        t: 'upsert_signal',
        k: r.k,
        code: r.code,
        scope: r.scope,
        ref: r.ref,
        sinceMs: r.sinceMs,
        expiresAtMs: r.expiresAtMs,
        eventId: r.sourceEventIds?.at(-1) ?? 'inherited',
        occurredAtMs: r.lastRaisedMs,
        attributes: r.attributes ?? {},
      });
    } else if (r.clearedMs !== undefined) {
      out.push({
        t: 'clear_signal',
        k: r.k,
        code: r.code,
        scope: r.scope,
        ref: r.ref,
        occurredAtMs: r.clearedMs,
      });
    }
  }
  return out;
}
