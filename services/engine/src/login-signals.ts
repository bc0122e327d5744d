import type { Policy } from '@assurance/policy';
import type { Mutation } from '@assurance/redis';
import { signalKey } from '@assurance/redis';
import type { SignalCode } from '@assurance/schemas';

/** The policy's signal settings (lifetimes, windows, thresholds), read-only. */
type SignalSettings = Policy['signals'];

/** What the login observation found (see login-observe-3.lua). */
export interface LoginObservation {
  readonly newDevice: boolean | null;
  readonly newNetwork: boolean | null;
  readonly counts: Readonly<Record<string, number>>;
}

export interface LoginFacts {
  readonly outcome: 'success' | 'failure';
  readonly authenticator: string;
  readonly occurredAtMs: number;
}

/** The counted kinds and their windows, from the policy. */
export function loginWindows(s: SignalSettings): Record<string, number> {
  return { mfa_fail: s.mfa_fatigue.windowMs, fail: s.repeated_failures.windowMs };
}

/** Which counters a login attempt adds to. */
export function loginKinds(s: SignalSettings, login: LoginFacts): string[] {
  if (login.outcome !== 'failure') return [];
  const kinds = ['fail'];
  if ((s.mfa_fatigue.authenticators as readonly string[]).includes(login.authenticator))
    kinds.push('mfa_fail');
  return kinds;
}

/**
 * Login-derived signals (docs/policy-behaviours.md, behaviour 7 and "other rules"): MFA fatigue,
 * repeated failures, and a new network together with a new device. Thresholds and windows are the policy's.
 */
export function loginMutations(
  s: SignalSettings,
  login: LoginFacts,
  seen: LoginObservation,
  eventId: string,
): Mutation[] {
  const out: Mutation[] = [];
  const at = login.occurredAtMs;
  const raise = (code: SignalCode, ttlMs: number, attributes: Record<string, string>): Mutation => ({
    t: 'upsert_signal',
    k: signalKey(code, 'identity', null),
    code,
    scope: 'identity',
    ref: null,
    sinceMs: at,
    expiresAtMs: at + ttlMs,
    eventId,
    occurredAtMs: at,
    attributes,
  });
  const mfaFails = seen.counts.mfa_fail ?? 0;
  if (login.outcome === 'failure' && mfaFails >= s.mfa_fatigue.threshold) {
    out.push(
      raise('mfa_fatigue', s.mfa_fatigue.ttlMs, {
        failures: String(mfaFails),
        authenticator: login.authenticator,
      }),
    );
  }
  const fails = seen.counts.fail ?? 0;
  if (login.outcome === 'failure' && fails >= s.repeated_failures.threshold) {
    out.push(raise('repeated_failures', s.repeated_failures.ttlMs, { failures: String(fails) }));
  }
  const anomaly = seen.newNetwork === true && (seen.newDevice === true || !s.login_anomaly.requireNewDevice);
  if (login.outcome === 'success' && anomaly) {
    out.push(raise('login_anomaly', s.login_anomaly.ttlMs, { newDevice: String(seen.newDevice === true) }));
  }
  return out;
}
