import type { IdentityRecord } from '@assurance/redis';

/**
 * Channel membership outlives nothing and is outlived by nothing (docs/state.md, channel
 * membership): a channel keeps an identity as a member for as long as the identity's own state
 * lives, so a SIM swap reaches every identity that still holds the phone, however long ago it was
 * bound. The channel cannot see the identity's activity, so the identity's owner (the decider)
 * extends its memberships when its own horizon moves past what the channels were told. The margin
 * makes that a rare write: with daily logins and a 400-day STATE_TTL, once every 50 days.
 */

/** The membership horizon written for a state horizon (-1: forever). */
export function membershipUntil(horizonMs: number, stateTtlMs: number): number {
  return horizonMs === -1 ? -1 : horizonMs + Math.floor(stateTtlMs / 8);
}

/** A channel the identity holds, and the member it is on that channel's side. */
export interface HeldChannel {
  readonly channelRef: string;
  /** The sync account the identity holds it through, or null when bound directly. */
  readonly via: string | null;
  /** The op time of the binding that holds it (a touch never overrides a newer op). */
  readonly opMs: number;
}

/** Every channel the identity holds: its bound bindings, and the recovery routes of its bound sync accounts. */
export function heldChannels(state: IdentityRecord): HeldChannel[] {
  const out: HeldChannel[] = [];
  for (const b of state.bindings) {
    if (!b.bound) continue;
    out.push({ channelRef: b.ref, via: null, opMs: b.opMs });
    for (const r of b.recoverableVia) out.push({ channelRef: r.channelRef, via: b.ref, opMs: b.opMs });
  }
  return out;
}

/**
 * Whether the channels must be told that the identity lives longer: it holds some channel and its
 * state now outlives what they were last told (or they were never told).
 */
export function membershipDue(state: IdentityRecord, horizonMs: number): boolean {
  if (!state.bindings.some((b) => b.bound)) return false;
  const told = state.membershipUntilMs;
  if (told === null) return true;
  // Forever, until the open-ended signal that needed it ended: tell them a finite time again.
  if (told === -1) return horizonMs !== -1;
  return horizonMs === -1 || told < horizonMs;
}
