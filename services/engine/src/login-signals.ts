import type { Policy } from '@assurance/policy';
import type { LoginRecord, Mutation } from '@assurance/redis';
import { signalKey } from '@assurance/redis';
import type { SignalCode } from '@assurance/schemas';

/** The policy's signal settings (lifetimes, windows, thresholds), read-only. */
type SignalSettings = Policy['signals'];

/** What identity-apply observed of a login (packages/redis, LoginObservation). */
export type { LoginObservation } from '@assurance/redis';

import type { LoginObservation } from '@assurance/redis';

export interface LoginFacts {
  readonly outcome: 'success' | 'failure';
  readonly authenticator: string;
  readonly occurredAtMs: number;
}

/** A failure kind's window, threshold and how many failures of it are kept, from the policy. */
function kindSettings(
  s: SignalSettings,
): Record<'fail' | 'mfa_fail', { windowMs: number; threshold: number }> {
  return {
    fail: { windowMs: s.repeated_failures.windowMs, threshold: s.repeated_failures.threshold },
    mfa_fail: { windowMs: s.mfa_fatigue.windowMs, threshold: s.mfa_fatigue.threshold },
  };
}

/** Which failure kinds a login attempt counts towards. */
export function loginKinds(s: SignalSettings, login: LoginFacts): string[] {
  if (login.outcome !== 'failure') return [];
  const kinds = ['fail'];
  if ((s.mfa_fatigue.authenticators as readonly string[]).includes(login.authenticator))
    kinds.push('mfa_fail');
  return kinds;
}

/**
 * The login as identity-apply records it. Twice the threshold of failures is kept per kind: enough
 * to find every failure that reached it while failures arrive in order, and a bound on what a
 * flood of failures can cost.
 */
export function loginRecord(
  s: SignalSettings,
  login: LoginFacts & { readonly deviceId: string | null; readonly network: string | null },
  h: string,
): LoginRecord {
  const kinds = kindSettings(s);
  const pick = <T>(f: (k: { windowMs: number; threshold: number }) => T) =>
    Object.fromEntries(Object.entries(kinds).map(([kind, k]) => [kind, f(k)]));
  return {
    h,
    at: login.occurredAtMs,
    kinds: loginKinds(s, login),
    windows: pick((k) => k.windowMs),
    thresholds: pick((k) => k.threshold),
    cap: pick((k) => Math.max(2 * k.threshold, 4)),
    device: login.deviceId ?? '',
    network: login.network ?? '',
    success: login.outcome === 'success',
    memory: s.login_anomaly.memoryMs,
  };
}

/**
 * Login-derived signals (docs/policy-behaviours.md, behaviour 7 and "other rules"): MFA fatigue and
 * repeated failures from the failures that reached their threshold (live from the earliest to
 * `ttl` after the latest), and a new network together with a new device. Thresholds and windows
 * are the policy's.
 */
export function loginMutations(
  s: SignalSettings,
  login: LoginFacts,
  seen: LoginObservation,
  eventId: string,
): Mutation[] {
  const out: Mutation[] = [];
  // A signal's sources are the logins that reached its threshold; another login that merely
  // re-asserts it (a redelivery, one outside the window) adds none.
  const raise = (
    code: SignalCode,
    sinceMs: number,
    lastMs: number,
    ttlMs: number,
    attributes: Record<string, string>,
    source: boolean,
  ): Mutation => ({
    t: 'r',
    k: signalKey(code, 'identity', null),
    code,
    scope: 'identity',
    ref: null,
    since: sinceMs,
    exp: lastMs + ttlMs,
    ev: source ? eventId : false,
    at: lastMs,
    attrs: attributes,
  });
  // A login that reached a threshold raises the signal for itself: live from its time for the
  // policy's lifetime, with its own count. The same login thus always raises the same thing however
  // often it is replayed, and the raises of one burst join into one episode (docs/state.md). Any
  // other failure re-asserts the latest that reached it, naming no source.
  const threshold = (
    code: SignalCode,
    t: LoginObservation['triggers'][string] | undefined,
    ttlMs: number,
  ) => {
    if (!t) return;
    const own = t.ownCount > 0;
    const at = own ? login.occurredAtMs : t.lastMs;
    out.push(raise(code, at, at, ttlMs, { failures: String(own ? t.ownCount : t.count) }, own));
  };
  threshold('mfa_fatigue', seen.triggers.mfa_fail, s.mfa_fatigue.ttlMs);
  threshold('repeated_failures', seen.triggers.fail, s.repeated_failures.ttlMs);
  const anomaly = seen.newNetwork === true && (seen.newDevice === true || !s.login_anomaly.requireNewDevice);
  if (login.outcome === 'success' && anomaly) {
    const at = login.occurredAtMs;
    out.push(
      raise(
        'login_anomaly',
        at,
        at,
        s.login_anomaly.ttlMs,
        { newDevice: String(seen.newDevice === true) },
        true,
      ),
    );
  }
  return out;
}
