import type { LoadedIdentity } from '@assurance/redis';
import { activeSignal } from '@assurance/redis';
import type { ActiveSignal, IdentityState } from '@assurance/schemas';

/** The policy's input from what Redis holds: only live, uncleared signals. */
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
