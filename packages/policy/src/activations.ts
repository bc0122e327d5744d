import type {
  ActiveSignal,
  Authenticator,
  Binding,
  ChannelType,
  IdentityState,
  RecoveryMethod,
} from './contract.ts';
import { CHANNEL_TYPES } from './contract.ts';
import type { PolicyRule, SignalMatcher } from './policy-schema.ts';

/**
 * Which rules fire on which signals, and which bound authenticators that touches. Kept apart from
 * the tier arithmetic in `evaluate.ts` so each half fits in one reading.
 */

/** One firing of a rule: the signals behind it and the window it covers. */
export interface Activation {
  rule: PolicyRule;
  signals: ActiveSignal[];
  /** When the condition became true (ms). */
  since: number;
  /** When it stops being true (ms), or `null` while no signal behind it expires. */
  end: number | null;
}

interface ChannelKey {
  type: ChannelType;
  ref: string;
}

/** Expiry in ms; `null` for "until cleared" and for an unreadable timestamp (an undated signal stays: fail closed). */
export function expiryOf(signal: ActiveSignal): number | null {
  if (signal.expiresAt === null) return null;
  const ms = Date.parse(signal.expiresAt);
  return Number.isNaN(ms) ? null : ms;
}

function sinceOf(signal: ActiveSignal, nowMs: number): number {
  const ms = Date.parse(signal.since);
  return Number.isNaN(ms) ? nowMs : ms;
}

function signalKey(s: ActiveSignal): string {
  return [
    s.code,
    s.scope,
    s.ref ?? '',
    s.since,
    s.expiresAt ?? '',
    [...s.sourceEventIds].sort().join(','),
  ].join('|');
}

/**
 * Signals still in force at `nowMs` (an `expiresAt` at or before now is gone), in a canonical
 * order so nothing downstream can depend on the order the store returned them in.
 */
export function activeSignals(signals: readonly ActiveSignal[], nowMs: number): ActiveSignal[] {
  return signals
    .filter((signal) => {
      const expiry = expiryOf(signal);
      return expiry === null || expiry > nowMs;
    })
    .map((signal) => ({ signal, key: signalKey(signal) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ signal }) => signal);
}

function matches(matcher: SignalMatcher, signal: ActiveSignal): boolean {
  if (!matcher.signals.includes(signal.code)) return false;
  if (matcher.scopes && !matcher.scopes.includes(signal.scope)) return false;
  for (const [name, accepted] of Object.entries(matcher.attributes ?? {})) {
    const value = signal.attributes?.[name];
    if (value === undefined || !accepted.includes(value)) return false;
  }
  return true;
}

/** Every firing of `rule` over the active signals. */
export function activationsOf(
  rule: PolicyRule,
  signals: readonly ActiveSignal[],
  nowMs: number,
): Activation[] {
  if (rule.when.mode === 'each') {
    const [matcher] = rule.when.matchers;
    if (!matcher) return [];
    return signals
      .filter((signal) => matches(matcher, signal))
      .map((signal) => ({ rule, signals: [signal], since: sinceOf(signal, nowMs), end: expiryOf(signal) }));
  }
  // allOf: lasts until the first matcher runs out of signals. `since` is the latest contributing
  // signal, so a fresh signal renews a timed hold and an older one never shortens it (monotonicity).
  const groups = rule.when.matchers.map((matcher) => signals.filter((signal) => matches(matcher, signal)));
  if (groups.some((group) => group.length === 0)) return [];
  let since = Number.NEGATIVE_INFINITY;
  let end: number | null = null;
  for (const group of groups) {
    since = Math.max(since, ...group.map((signal) => sinceOf(signal, nowMs)));
    const ends = group.map(expiryOf);
    const groupEnd = ends.includes(null) ? null : Math.max(...(ends as number[]));
    if (groupEnd !== null) end = end === null ? groupEnd : Math.min(end, groupEnd);
  }
  return [{ rule, signals: [...new Set(groups.flat())], since, end }];
}

/**
 * The rules `signal` takes part in firing among the signals in force at `nowMs`, with the
 * evaluator's own matching (for explanations: "which rules does this signal make fire?").
 */
export function rulesFiredBy(
  rules: readonly PolicyRule[],
  signal: ActiveSignal,
  signals: readonly ActiveSignal[],
  nowMs: number,
): PolicyRule[] {
  const active = activeSignals(signals, nowMs);
  return rules.filter((rule) => activationsOf(rule, active, nowMs).some((a) => a.signals.includes(signal)));
}

/** The channel a signal is about, if it names one. */
export function channelOf(signal: ActiveSignal): ChannelKey | undefined {
  const type = CHANNEL_TYPES.find((candidate) => candidate === signal.scope);
  return type && signal.ref !== null ? { type, ref: signal.ref } : undefined;
}

/** Which of `listed` the activation touches through the identity's bindings. */
export interface BoundLookup {
  /** Nothing can be told apart: bindings unknown, or a signal that names no channel. */
  wholesale: boolean;
  authenticators: (listed: readonly Authenticator[]) => Authenticator[];
  recoverableVia: (listed: readonly Authenticator[]) => Authenticator[];
  recovery: (listed: readonly RecoveryMethod[]) => RecoveryMethod[];
  /** The bindings on a channel the activation is about. */
  onChannel: readonly Binding[];
  /** The bindings (sync accounts) recoverable through such a channel. */
  recoverable: readonly Binding[];
}

/** A binding's identity within one state: its channel type and hashed ref. */
export function bindingKey(b: { channelType: string; channelRef: string }): string {
  return `${b.channelType}:${b.channelRef}`;
}

/**
 * Resolves "bound to the signal's channel" for one activation. An authenticator class bound to a
 * suspect channel is excluded as a class; the bindings it touched are named so that the decision
 * can still accept the class on the identity's other bindings (evaluate.ts, `acceptableOn`). When
 * bindings are unknown, or a signal names no channel, nothing can be ruled out: the whole class
 * goes, on every binding.
 */
export function boundLookup(activation: Activation, state: IdentityState): BoundLookup {
  const channels = activation.signals.map(channelOf);
  const wholesale = !state.bindingsKnown || channels.includes(undefined);
  const keys = new Set(channels.map((channel) => (channel ? `${channel.type}:${channel.ref}` : '')));
  const onChannel = state.bindings.filter((b) => keys.has(bindingKey(b)));
  const recoverable = state.bindings.filter((b) =>
    (b.recoverableVia ?? []).some((via) => keys.has(bindingKey(via))),
  );
  const pick = <T extends string>(listed: readonly T[], carriers: Array<readonly T[]>): T[] =>
    wholesale ? [...listed] : listed.filter((item) => carriers.some((carried) => carried.includes(item)));
  return {
    wholesale,
    authenticators: (listed) =>
      pick(
        listed,
        onChannel.map((b) => b.authenticators),
      ),
    recoverableVia: (listed) =>
      pick(
        listed,
        recoverable.map((b) => b.authenticators),
      ),
    recovery: (listed) =>
      pick(
        listed,
        onChannel.map((b) => b.recovery),
      ),
    onChannel,
    recoverable,
  };
}
