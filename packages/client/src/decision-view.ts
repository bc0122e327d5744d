import type { Policy } from '@assurance/policy';
import { expandDecisionLazily } from '@assurance/policy';
import {
  Decision,
  DecisionV2,
  type DecisionVerifier,
  detectEncoding,
  parseJsonValue,
  SIGNATURE_HEADER,
} from '@assurance/schemas';

/**
 * The in-memory view of the compacted decisions topic: the latest decision per identity, and when
 * each partition was last known to be fully read. Pure (no Kafka, no clock): the topic client feeds
 * it messages and catch-up observations.
 */

/** Largest decision value read (a decision with hundreds of signals is tens of KiB). */
export const MAX_DECISION_BYTES = 1024 * 1024;

/** The parts of a Kafka message the view needs. */
export interface ViewMessage {
  readonly partition: number;
  readonly key: Buffer | null;
  /** null is a tombstone: the identity's decision was deleted. */
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

/** What applying one message did, for hooks, metrics and tests. */
export type ViewUpdate =
  | { readonly kind: 'applied'; readonly identityId: string; readonly sequence: number }
  | {
      /** A sequence lower than or equal to the one held: a republish or a late duplicate, ignored. */
      readonly kind: 'ignored_stale';
      readonly identityId: string;
      readonly sequence: number;
      readonly current: number;
    }
  | { readonly kind: 'tombstone'; readonly identityId: string }
  | {
      /** Unreadable or invalid value; the identity (if the key names one) answers degraded until a newer decision. */
      readonly kind: 'rejected';
      readonly identityId: string | null;
      readonly reason:
        | 'no_key'
        | 'unsupported_encoding'
        | 'invalid_json'
        | 'invalid_decision'
        | 'key_mismatch'
        /** A format 2 decision made under a policy this reader does not hold: it cannot be expanded. */
        | 'policy_mismatch'
        /** No signature, a signature that does not verify, or one by a key this reader does not trust. */
        | 'unsigned'
        | 'bad_signature'
        | 'unknown_key'
        /** A sequence dated further ahead of this reader's clock than any engine would write. */
        | 'sequence_ahead'
        /** A tombstone where decisions are signed: the engine never deletes one, so its identity fails closed. */
        | 'tombstone'
        /** The view holds `maxIdentities` already: a new identity's decision is not held. */
        | 'view_full';
    };

/** What the view holds for one identity. */
export interface ViewEntry {
  /** The latest valid decision, if any. */
  readonly decision: Decision | undefined;
  /** True when a message newer than `decision` could not be read: `decision` may be outdated. */
  readonly invalid: boolean;
}

type RejectReason = Extract<ViewUpdate, { kind: 'rejected' }>['reason'];

/**
 * A decision as held: format 1 as read, format 2 as read too (a fraction of the memory) and
 * expanded when looked up, with the policy checked when it was read.
 */
type Held = Decision | DecisionV2;

/** How far a sequence's time part may run ahead of the reader's clock (bursts, clock skew). */
const SEQUENCE_AHEAD_MS = 10 * 60_000;
/** A sequence's time part (the epoch sits above 2^42 ms; see docs/state.md, sequences). */
const timeOf = (sequence: number) => sequence % 2 ** 42;

function parseDecision(
  value: Buffer,
  policy: Policy | undefined,
): { ok: true; decision: Held } | { ok: false; reason: RejectReason } {
  // The engine publishes JSON; a registry-encoded decision would need the registry, which v1 does not use.
  if (detectEncoding(value) !== 'json') return { ok: false, reason: 'unsupported_encoding' };
  let raw: Record<string, unknown>;
  try {
    raw = parseJsonValue(value, MAX_DECISION_BYTES);
  } catch {
    return { ok: false, reason: 'invalid_json' };
  }
  // A format this reader does not know says nothing it can trust.
  if (raw.format !== undefined && raw.format !== 2) return { ok: false, reason: 'invalid_decision' };
  if (raw.format === 2) {
    // Format 2 tiers are written relative to the policy they were decided under: without that very
    // policy they say too little, so the identity answers degraded until a decision it can read.
    const v2 = DecisionV2.safeParse(raw);
    if (!v2.success) return { ok: false, reason: 'invalid_decision' };
    if (policy === undefined || policy.digest !== v2.data.policyDigest)
      return { ok: false, reason: 'policy_mismatch' };
    return { ok: true, decision: v2.data };
  }
  const parsed = Decision.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: 'invalid_decision' };
  // A format 1 decision spells its tiers out, but the action → tier mapping a lookup uses is this
  // reader's policy: under another policy the two can disagree, and an action would be answered
  // with another tier's requirement. Only decisions of the policy the reader holds are trusted.
  if (policy !== undefined && policy.digest !== parsed.data.policyDigest)
    return { ok: false, reason: 'policy_mismatch' };
  return { ok: true, decision: parsed.data };
}

/** The `x-sequence` header the engine sets, when it is a positive integer. */
function headerSequence(headers: Readonly<Record<string, string>>): number | undefined {
  const raw = headers['x-sequence'];
  if (raw === undefined || !/^[1-9]\d{0,15}$/.test(raw)) return undefined;
  return Number(raw);
}

/** The latest decision per identity, by `sequence`, plus per-partition catch-up times. */
export class DecisionView {
  readonly #policy: Policy | undefined;
  readonly #decisions = new Map<string, Held>();
  readonly #invalid = new Set<string>();
  readonly #caughtUpAt = new Map<number, number>();
  #partitions: readonly number[] | undefined;

  readonly #verifier: DecisionVerifier | undefined;
  readonly #now: () => number;

  /**
   * `policy`: the policy lookups map actions to tiers with and format 2 decisions are expanded with;
   * a decision made under another policy is rejected and its identity answers degraded. Without
   * one, format 2 decisions are rejected and format 1 decisions taken as they are.
   * `verifier`: the engines' public keys; with it, only decisions they signed are held
   * (docs/contract.md#signed-decisions), and a tombstone fails its identity closed.
   */
  readonly #maxIdentities: number;
  #full = false;

  constructor(
    policy?: Policy,
    options: { verifier?: DecisionVerifier; now?: () => number; maxIdentities?: number } = {},
  ) {
    this.#policy = policy;
    this.#verifier = options.verifier;
    this.#now = options.now ?? Date.now;
    this.#maxIdentities = options.maxIdentities ?? Number.POSITIVE_INFINITY;
  }

  /**
   * True once a decision was turned away for want of room: from then on an identity the view does
   * not hold may be one it dropped, so it can no longer be answered with the baseline.
   */
  get full(): boolean {
    return this.#full;
  }

  /** Identities with a decision. */
  get size(): number {
    return this.#decisions.size;
  }

  /**
   * Applies one message. A decision replaces the held one only if its `sequence` is higher: the
   * engine may republish after a crash, and a replayed or duplicated older decision must never
   * roll the view back.
   */
  apply(message: ViewMessage): ViewUpdate {
    const identityId = message.key?.toString('utf8') ?? '';
    if (identityId.length === 0) {
      this.#count('no_key');
      return { kind: 'rejected', identityId: null, reason: 'no_key' };
    }
    if (message.value === null) {
      this.#decisions.delete(identityId);
      if (this.#verifier !== undefined) {
        // Nobody can sign a deletion: it would turn the identity into the lenient baseline.
        this.#pending.delete(identityId);
        this.#invalid.add(identityId);
        return this.#reject(identityId, 'tombstone');
      }
      this.#invalid.delete(identityId);
      return { kind: 'tombstone', identityId };
    }
    let current = this.#decisions.get(identityId);
    const parsed = parseDecision(message.value, this.#policy);
    const rejected: RejectReason | undefined = !parsed.ok
      ? parsed.reason
      : parsed.decision.identityId !== identityId
        ? 'key_mismatch'
        : timeOf(parsed.decision.sequence) > this.#now() + SEQUENCE_AHEAD_MS
          ? 'sequence_ahead'
          : undefined;
    if (rejected !== undefined || !parsed.ok) {
      // An unreadable message that says it is older than what we hold cannot hide anything newer.
      const claimed = headerSequence(message.headers);
      const older = current !== undefined && claimed !== undefined && claimed <= current.sequence;
      if (!older) this.#invalid.add(identityId);
      return this.#reject(identityId, rejected ?? 'invalid_decision');
    }
    const { decision } = parsed;
    // The held decision may not be verified yet (see #pending). Before it may hold a newer-looking
    // record back, it must prove itself: a forged one is dropped here, not at the next lookup.
    if (current !== undefined && decision.sequence <= current.sequence && this.#pending.has(identityId)) {
      if (!this.#verifyHeld(identityId)) current = undefined;
    }
    if (current === undefined && this.#decisions.size >= this.#maxIdentities) {
      this.#full = true;
      return this.#reject(identityId, 'view_full');
    }
    if (current !== undefined && decision.sequence <= current.sequence) {
      return { kind: 'ignored_stale', identityId, sequence: decision.sequence, current: current.sequence };
    }
    this.#decisions.set(identityId, decision);
    this.#invalid.delete(identityId);
    if (this.#verifier !== undefined)
      this.#pending.set(identityId, {
        value: message.value,
        signature: message.headers[SIGNATURE_HEADER],
        sequence: decision.sequence,
      });
    return { kind: 'applied', identityId, sequence: decision.sequence };
  }

  /**
   * Held decisions whose signature is not checked yet, with what checking needs. Verifying costs
   * about 70 µs a record, and a topic read from its start holds several records per identity: the
   * held one is verified when it is looked up, before anything may displace it, or in the
   * background (verifyPending), whichever comes first. Never answered from before.
   */
  readonly #pending = new Map<string, { value: Buffer; signature: string | undefined; sequence: number }>();
  readonly #rejected: Record<string, number> = {};

  /** Records refused so far, by reason (at reading, and when a held one failed its check). */
  get rejected(): Readonly<Record<string, number>> {
    return { ...this.#rejected };
  }

  /** Held decisions still to verify. */
  get unverified(): number {
    return this.#pending.size;
  }

  #count(reason: string): void {
    this.#rejected[reason] = (this.#rejected[reason] ?? 0) + 1;
  }

  #reject(identityId: string, reason: RejectReason): ViewUpdate {
    this.#count(reason);
    return { kind: 'rejected', identityId, reason };
  }

  /**
   * Checks the held decision of `identityId` if it is unchecked; false (and the identity failed
   * closed until a newer decision, the record dropped) when its signature does not hold.
   */
  #verifyHeld(identityId: string): boolean {
    const p = this.#pending.get(identityId);
    if (p === undefined || this.#verifier === undefined) return true;
    this.#pending.delete(identityId);
    const check = this.#verifier.verify(p.value, p.signature);
    // The engine signs every decision with its sequence: one without, or another, is not this value's.
    const reason = !check.ok ? check.reason : check.seq !== p.sequence ? 'bad_signature' : undefined;
    if (reason === undefined) return true;
    this.#decisions.delete(identityId);
    this.#invalid.add(identityId);
    this.#count(reason);
    return false;
  }

  /** Verifies held decisions for up to `budgetMs`; returns how many are left. */
  verifyPending(budgetMs: number): number {
    const deadline = performance.now() + budgetMs;
    for (const identityId of this.#pending.keys()) {
      this.#verifyHeld(identityId);
      if (performance.now() >= deadline) break;
    }
    return this.#pending.size;
  }

  /** What the view holds for `identityId` (a format 2 decision expanded with the view's policy), verified. */
  get(identityId: string): ViewEntry {
    this.#verifyHeld(identityId);
    const held = this.#decisions.get(identityId);
    const decision =
      held === undefined || this.#policy === undefined ? held : expandDecisionLazily(this.#policy, held);
    return { decision: decision as Decision | undefined, invalid: this.#invalid.has(identityId) };
  }

  /** The topic's partitions, as the admin client reports them. */
  setPartitions(partitions: readonly number[]): void {
    this.#partitions = [...partitions].sort((a, b) => a - b);
  }

  /** `partition` was fully read (lag 0) as of `atMs`: everything written before then is in the view. */
  markCaughtUp(partition: number, atMs: number): void {
    const previous = this.#caughtUpAt.get(partition);
    if (previous === undefined || atMs > previous) this.#caughtUpAt.set(partition, atMs);
  }

  /**
   * The instant up to which the view is known to be complete: the oldest catch-up time over all
   * partitions, or undefined while the partitions are unknown or one has never been caught up.
   */
  completeAsOf(): number | undefined {
    if (this.#partitions === undefined || this.#partitions.length === 0) return undefined;
    let oldest = Number.POSITIVE_INFINITY;
    for (const p of this.#partitions) {
      const at = this.#caughtUpAt.get(p);
      if (at === undefined) return undefined;
      oldest = Math.min(oldest, at);
    }
    return oldest;
  }
}
