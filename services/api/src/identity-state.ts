import type { LoadedIdentity } from '@assurance/redis';
import { activeSignal } from '@assurance/redis';
import type { ActiveSignal, IdentityState } from '@assurance/schemas';

/**
 * The policy's input from what Redis holds, exactly as the engine builds it (only live, uncleared
 * signals; bindings in a stable order), so the API's evaluations equal the engine's.
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

/** An identity the engine knows nothing about: no bindings known, no signals. */
export function emptyState(identityId: string): IdentityState {
  return { identityId, tenantId: null, bindingsKnown: false, bindings: [], signals: [] };
}
