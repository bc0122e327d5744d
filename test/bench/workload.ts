import type { InputRole } from '@assurance/schemas';
/**
 * The benchmark's traffic, generated deterministically from a seed: N identities that bind a phone,
 * an email and a device (a fifth of them share a synced-passkey account, in pairs, recoverable via
 * the first member's email), then a mix of every input event type. Pure data: nothing here talks to
 * Kafka; see `encode` for the wire bytes.
 */

/** One input event before encoding: its role (topic), Kafka key and contract value. */
export interface BenchEvent {
  readonly role: InputRole;
  readonly key: string;
  readonly value: Record<string, unknown>;
}

/** Shares of the event mix (they need not sum to 1; they are normalised). */
export const MIX_WEIGHTS = {
  loginSuccess: 0.44,
  loginFailure: 0.14,
  /** A burst of failed push logins on one identity, enough to raise MFA fatigue. */
  fatigueBurst: 0.06,
  device: 0.12,
  simSwap: 0.08,
  mailboxChange: 0.08,
  soc: 0.08,
} as const;
type MixKind = keyof typeof MIX_WEIGHTS;

/** Failed push logins per fatigue burst: one more than the default policy's threshold of 5. */
export const FATIGUE_BURST = 6;

/** mulberry32: small, fast, good enough to pick events reproducibly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const identityId = (i: number) => `bench-u${i}`;
export const phoneOf = (i: number) => `+4915${String(i).padStart(9, '0')}`;
export const emailOf = (i: number) => `u${i}@bench.example.com`;
export const deviceOf = (i: number) => `dev-${i}-a`;
/** Identities i with i % 10 < 2 share a keychain with their neighbour (0+1, 10+11, ...). */
export const hasSync = (i: number) => i % 10 < 2;
export const syncOf = (i: number) => `keychain:${i >> 1}`;
/** Device-bound passkeys on 30% of devices. */
const hasDevicePasskey = (i: number) => i % 10 >= 7;

function deviceAuthenticators(i: number): string[] {
  return hasDevicePasskey(i) ? ['push', 'totp', 'passkey_device_bound'] : ['push', 'totp'];
}

function loginAuthenticators(i: number): string[] {
  return ['sms_otp', 'email_otp', ...deviceAuthenticators(i), ...(hasSync(i) ? ['passkey_synced'] : [])];
}

interface Clock {
  /** Next event time (ISO) and its id. */
  next(): { eventId: string; occurredAt: string; atMs: number };
}

function clock(idPrefix: string, startMs: number, stepMs: number): Clock {
  let n = 0;
  return {
    next() {
      const atMs = Math.round(startMs + n * stepMs);
      const eventId = `${idPrefix}-${n}`;
      n++;
      return { eventId, occurredAt: new Date(atMs).toISOString(), atMs };
    },
  };
}

/** A binding of `channel` to identity `id`, at the clock's next time. */
function bindEvent(
  c: Clock,
  id: string,
  channel: { type: string; value: string },
  uses: object,
  extra: object = {},
): BenchEvent {
  const { eventId, occurredAt } = c.next();
  return {
    role: 'channelBinding',
    key: id,
    value: { eventId, occurredAt, source: 'idp-sync', identityId: id, op: 'bound', channel, uses, ...extra },
  };
}

/** Every identity's bindings, identity by identity (an identity's events share a partition). */
export function bindings(identities: number, nowMs: number, from = 0): BenchEvent[] {
  // Bound ten days ago, a millisecond apart: old enough that nothing about them is "new".
  const c = clock(`b${from}`, nowMs - 10 * 86_400_000 + from * 4, 1);
  const out: BenchEvent[] = [];
  for (let i = from; i < identities; i++) {
    const id = identityId(i);
    const bind = (channel: { type: string; value: string }, uses: object, extra: object = {}) =>
      out.push(bindEvent(c, id, channel, uses, extra));
    bind(
      { type: 'phone', value: phoneOf(i) },
      { authenticators: ['sms_otp', 'voice_otp'], recovery: ['sms_code'] },
    );
    bind(
      { type: 'email', value: emailOf(i) },
      { authenticators: ['email_otp', 'email_link'], recovery: ['email_link'] },
    );
    bind({ type: 'device', value: deviceOf(i) }, { authenticators: deviceAuthenticators(i), recovery: [] });
    if (hasSync(i)) {
      bind(
        { type: 'sync_account', value: syncOf(i) },
        { authenticators: ['passkey_synced'], recovery: [] },
        { recoverableVia: [{ type: 'email', value: emailOf(i & ~1) }] },
      );
    }
  }
  return out;
}

function pickKind(r: () => number): MixKind {
  const kinds = Object.keys(MIX_WEIGHTS) as MixKind[];
  const total = kinds.reduce((s, k) => s + MIX_WEIGHTS[k], 0);
  let x = r() * total;
  for (const k of kinds) {
    x -= MIX_WEIGHTS[k];
    if (x < 0) return k;
  }
  return 'loginSuccess';
}

const SOC_KIND: Record<string, string> = {
  identity: 'credential_leak',
  phone: 'sim_swap',
  email: 'mailbox_compromise',
  device: 'device_compromise',
};

const COUNTRIES = ['DE', 'FR', 'NL', 'AT', 'PL'] as const;
const FAR = ['BR', 'VN', 'NG', 'RU', 'ID'] as const;

/**
 * `count` events of the mix over `identities`, `idPrefix` naming their event ids (`<prefix>-<n>`),
 * occurring between `fromMs` and `toMs`. SOC raises are cleared later in the stream for half of
 * them (same key, so the clear follows its raise on one partition).
 */
export function mix(args: {
  identities: number;
  count: number;
  seed: number;
  idPrefix: string;
  fromMs: number;
  toMs: number;
}): BenchEvent[] {
  const { identities, count } = args;
  const r = rng(args.seed);
  const c = clock(args.idPrefix, args.fromMs, (args.toMs - args.fromMs) / Math.max(1, count));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const who = () => Math.floor(r() * identities);
  const out: BenchEvent[] = [];
  // Clears waiting for their turn: emitted once the stream reaches `at`.
  const pending: Array<{ at: number; make: () => BenchEvent }> = [];
  let socSeq = 0;

  const login = (i: number, outcome: 'success' | 'failure', authenticator: string, far = false) => {
    const { eventId, occurredAt } = c.next();
    const base = { eventId, occurredAt, source: 'okta', identityId: identityId(i), outcome, authenticator };
    const where = far
      ? {
          country: pick(FAR),
          asn: 64_512 + Math.floor(r() * 1000),
          deviceId: `dev-${i}-x${Math.floor(r() * 1e6)}`,
        }
      : { country: COUNTRIES[i % COUNTRIES.length], asn: 3320 + (i % 7), deviceId: deviceOf(i) };
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    out.push({ role: 'login', key: identityId(i), value: { ...base, ip, ...where, userAgent: 'bench/1.0' } });
  };

  while (out.length < count) {
    const due = pending.findIndex((p) => p.at <= out.length);
    if (due >= 0) {
      const [p] = pending.splice(due, 1);
      if (p) out.push(p.make());
      continue;
    }
    const i = who();
    const id = identityId(i);
    switch (pickKind(r)) {
      case 'loginSuccess':
        // 3% from a far network on a device never seen: a login anomaly.
        login(i, 'success', pick(loginAuthenticators(i)), r() < 0.03);
        break;
      case 'loginFailure':
        login(i, 'failure', pick(loginAuthenticators(i)));
        break;
      case 'fatigueBurst':
        for (let k = 0; k < FATIGUE_BURST && out.length < count; k++) login(i, 'failure', 'push');
        break;
      case 'device': {
        const { eventId, occurredAt } = c.next();
        const x = r();
        const base = { eventId, occurredAt, source: 'mdm', identityId: id };
        const value =
          x < 0.45
            ? {
                ...base,
                deviceId: `dev-${i}-n${Math.floor(r() * 1e6)}`,
                change: 'enrolled',
                managed: r() < 0.5,
                hardwareBacked: true,
                authenticators: ['push', 'totp'],
              }
            : x < 0.65
              ? { ...base, deviceId: deviceOf(i), change: 'trust_changed', managed: true }
              : x < 0.85
                ? { ...base, deviceId: deviceOf(i), change: 'compromised' }
                : { ...base, deviceId: deviceOf(i), change: 'lost', authenticators: [] };
        out.push({ role: 'device', key: id, value });
        break;
      }
      case 'simSwap': {
        const { eventId, occurredAt, atMs } = c.next();
        const phone = phoneOf(i);
        out.push({
          role: 'simSwap',
          key: phone,
          value: {
            eventId,
            occurredAt,
            source: 'carrier-feed',
            phoneNumber: phone,
            swappedAt: new Date(atMs - Math.floor(r() * 3 * 86_400_000)).toISOString(),
            changeType: pick(['sim_change', 'port_out', 'esim_transfer'] as const),
            carrier: 'Bench Mobile',
          },
        });
        break;
      }
      case 'mailboxChange': {
        const { eventId, occurredAt } = c.next();
        const mailbox = emailOf(i);
        // password_changed and internal forwarding are not counted by the policy: realistic noise.
        const change = pick([
          'forwarding_rule_added',
          'forwarding_rule_added',
          'inbox_rule_added',
          'recovery_changed',
          'suspicious_login',
          'password_changed',
        ] as const);
        out.push({
          role: 'mailboxChange',
          key: mailbox,
          value: { eventId, occurredAt, source: 'm365-audit', mailbox, change, external: r() < 0.7 },
        });
        break;
      }
      case 'soc': {
        const { eventId, occurredAt, atMs } = c.next();
        const signalId = `${args.idPrefix}-sig-${socSeq++}`;
        const x = r();
        const subject =
          x < 0.4
            ? { type: 'identity', value: id }
            : x < 0.6
              ? { type: 'phone', value: phoneOf(i) }
              : x < 0.8
                ? { type: 'email', value: emailOf(i) }
                : { type: 'device', value: deviceOf(i) };
        const key = `${subject.type}:${subject.value}`;
        const takeover = subject.type === 'identity' && r() < 0.5;
        const kind = takeover ? 'account_takeover' : SOC_KIND[subject.type];
        out.push({
          role: 'compromiseSignal',
          key,
          value: {
            eventId,
            occurredAt,
            source: 'soc-console',
            signalId,
            op: 'raise',
            subject,
            kind,
            severity: takeover ? 'critical' : 'high',
            ...(subject.type === 'identity'
              ? {}
              : { expiresAt: new Date(atMs + 7 * 86_400_000).toISOString() }),
            reference: `INC-${socSeq}`,
            raisedBy: 'soc:bench',
          },
        });
        if (r() < 0.5) {
          pending.push({
            at: out.length + 50 + Math.floor(r() * 500),
            make: () => {
              const e = c.next();
              return {
                role: 'compromiseSignal',
                key,
                value: {
                  eventId: e.eventId,
                  occurredAt: e.occurredAt,
                  source: 'soc-console',
                  signalId,
                  op: 'clear',
                  subject,
                  raisedBy: 'soc:bench',
                },
              };
            },
          });
        }
        break;
      }
    }
  }
  return out;
}

/** How many events of each role, for the report. */
export function countByRole(events: readonly BenchEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) out[e.role] = (out[e.role] ?? 0) + 1;
  return out;
}

/**
 * One phone bound to `members` identities of their own (`bench-fan-<i>`), then one SIM swap on it:
 * the fan-out the benchmark times (a shared line, a family plan, a help-desk number).
 */
export function fanOut(members: number, nowMs: number): { binds: BenchEvent[]; swap: BenchEvent } {
  const phone = '+15550100999';
  const c = clock('fan-b', nowMs - 5 * 86_400_000, 1);
  const binds: BenchEvent[] = [];
  for (let i = 0; i < members; i++) {
    binds.push(
      bindEvent(
        c,
        `bench-fan-${i}`,
        { type: 'phone', value: phone },
        { authenticators: ['sms_otp'], recovery: ['sms_code'] },
      ),
    );
  }
  const occurredAt = new Date(nowMs).toISOString();
  return {
    binds,
    swap: {
      role: 'simSwap',
      key: phone,
      value: {
        eventId: 'fan-swap-0',
        occurredAt,
        source: 'carrier-feed',
        phoneNumber: phone,
        swappedAt: occurredAt,
        changeType: 'port_out',
      },
    },
  };
}
