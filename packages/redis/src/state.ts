import type { ActiveSignal, IdentityState } from '@assurance/schemas';
import type { LoadedIdentity } from './store.ts';
import { activeSignal } from './store.ts';

/**
 * The policy's input from what Redis holds: only live, uncleared signals, bindings in a stable
 * order. The engine decides with it and the API re-evaluates with it, so both must build it here.
 */
export function toIdentityState(identityId: string, loaded: LoadedIdentity, nowMs: number): IdentityState {
  const signals: ActiveSignal[] = [];
  for (const r of loaded.signals) {
    const a = activeSignal(r, nowMs);
    if (a) signals.push(a);
  }
  return {
    identityId,
    tenantId: loaded.tenantId,
    bindingsKnown: loaded.bindingsKnown,
    bindings: [...loaded.bindings].sort((a, b) => a.channelRef.localeCompare(b.channelRef)),
    signals,
  };
}

/** An identity nothing is known about: no bindings seen, no signals. */
export function emptyState(identityId: string): IdentityState {
  return { identityId, tenantId: null, bindingsKnown: false, bindings: [], signals: [] };
}
