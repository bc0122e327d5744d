import { refFor } from './case-file.ts';
import type {
  ActiveSignal,
  Authenticator,
  Binding,
  IdentityState,
  RecoveryMethod,
  SignalCode,
} from './contract.ts';
import { loadPolicyFile, type Policy } from './load.ts';

/**
 * Small builders for unit and property tests. Channels are named `phone:main` and hashed with the
 * same `refFor` the case files use.
 */

/** A fixed instant so tests never depend on the wall clock. */
export const NOW = new Date('2025-06-01T12:00:00.000Z');

let cached: Policy | undefined;
/** The shipped default policy, loaded once per process. */
export function defaultPolicy(): Policy {
  cached ??= loadPolicyFile();
  return cached;
}

/** `NOW` shifted by `hours` (negative for the past), as ISO. */
export function at(hours: number): string {
  return new Date(NOW.getTime() + hours * 3_600_000).toISOString();
}

/** A binding of `channel` (e.g. `phone:main`) to authenticators and recovery methods. */
export function bind(
  channel: string,
  authenticators: Authenticator[],
  recovery: RecoveryMethod[] = [],
  recoverableVia: string[] = [],
): Binding {
  const split = (name: string) => ({
    channelType: name.slice(0, name.indexOf(':')) as Binding['channelType'],
    channelRef: refFor(name),
  });
  return {
    ...split(channel),
    authenticators,
    recovery,
    boundAt: at(-24 * 30),
    recoverableVia: recoverableVia.map(split),
  };
}

/** A signal on `on` (`identity` or `<scope>:<name>`), active since an hour ago, by default never expiring. */
export function signal(
  code: SignalCode,
  on: string,
  options: { since?: string; expiresAt?: string | null; attributes?: Record<string, string> } = {},
): ActiveSignal {
  const colon = on.indexOf(':');
  return {
    code,
    scope: (colon < 0 ? on : on.slice(0, colon)) as ActiveSignal['scope'],
    ref: colon < 0 ? null : refFor(on),
    since: options.since ?? at(-1),
    expiresAt: options.expiresAt ?? null,
    sourceEventIds: [`evt-${code}-${on}`],
    attributes: options.attributes ?? {},
  };
}

/** An identity state; `bindings` undefined means "bindings unknown". */
export function state(bindings: Binding[] | undefined, signals: ActiveSignal[] = []): IdentityState {
  return {
    identityId: 'id-1',
    tenantId: null,
    bindingsKnown: bindings !== undefined,
    bindings: bindings ?? [],
    signals,
  };
}
