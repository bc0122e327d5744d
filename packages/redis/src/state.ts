import type { ActiveSignal, Binding, IdentityState } from '@assurance/schemas';
import { activeBinding, activeSignal, type IdentityRecord } from './records.ts';

/**
 * The policy's input from what Redis holds: only live, uncleared signals, bound bindings, in a
 * stable order; an identity that overflowed a cap carries `signal_unreadable` (it fails closed). The engine decides with it and the API re-evaluates with it, so both build it here.
 */
export function toIdentityState(record: IdentityRecord, nowMs: number): IdentityState {
  const signals: ActiveSignal[] = [];
  for (const r of record.signals) {
    const a = activeSignal(r, nowMs);
    if (a) signals.push(a);
  }
  if (record.overflowSinceMs !== null) {
    // A cap was reached and something was not stored: whatever it was, assume the worst.
    signals.push({
      code: 'signal_unreadable',
      scope: 'identity',
      ref: null,
      since: new Date(record.overflowSinceMs).toISOString(),
      expiresAt: null,
      sourceEventIds: [],
      attributes: { reason: 'state_overflow' },
    });
  }
  const bindings: Binding[] = [];
  for (const b of record.bindings) {
    const a = activeBinding(b);
    if (a) bindings.push(a);
  }
  return {
    identityId: record.identityId,
    tenantId: record.tenantId,
    bindingsKnown: record.bindingsKnown,
    bindings: bindings.sort((a, b) => a.channelRef.localeCompare(b.channelRef)),
    signals: signals.sort((a, b) =>
      `${a.code}|${a.scope}|${a.ref ?? ''}|${a.since}`.localeCompare(
        `${b.code}|${b.scope}|${b.ref ?? ''}|${b.since}`,
      ),
    ),
  };
}

/** An identity nothing is known about: no bindings seen, no signals. */
export function emptyState(identityId: string): IdentityState {
  return { identityId, tenantId: null, bindingsKnown: false, bindings: [], signals: [] };
}
