import { randomUUID } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { AssuranceError } from '@assurance/core';
import { type KafkaClient, readTopicToEnd } from '@assurance/kafka';
import type { MetaStore, Mutation, StateStore } from '@assurance/redis';
import { epochOf, MAX_EPOCH, STATE_FORMAT, signalKey, socKey } from '@assurance/redis';
import type { ActiveSignal } from '@assurance/schemas';
import {
  CHANNEL_TYPES,
  Decision,
  DecisionV2,
  type DecisionVerifier,
  SIGNATURE_HEADER,
  SignalKind,
} from '@assurance/schemas';
import { z } from 'zod';

/** A decision as the topic holds it, in format 1 or 2. */
const PublishedDecision = z.union([DecisionV2, Decision]);

import type { EngineMetrics } from './metrics.ts';

/**
 * Rebuilding a store from what Kafka retains (docs/state.md, data loss and rebuild). Two sources:
 *
 * - the decisions topic (compacted, so it keeps every identity's last decision however old): its
 *   live signals seed the identities and channels, and its highest sequence gives the epoch to
 *   start in, so new decisions outrank every one published before;
 * - the input topics, replayed from where the store stopped (store-guard.ts): merges are
 *   idempotent and independent of order, so replaying on top of the seed converges to the state.
 *
 * What neither holds is gone: bindings older than the input topics' retention (those identities
 * read as "bindings unknown", which the policy answers strictly), login history, known devices.
 */

export interface RecoveryDeps {
  readonly kafka: KafkaClient;
  readonly decisionsTopic: string;
  /** Throwaway read groups are named under it: the engine's own group prefix, which its ACLs grant. */
  readonly groupIdPrefix: string;
  readonly state: StateStore;
  readonly meta: MetaStore;
  readonly prefix: string;
  readonly secretDigest: string;
  readonly policyDigest: string;
  /** Only decisions these keys signed are read back: a forged one must not seed state or epochs. */
  readonly verifier: DecisionVerifier;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  readonly clock?: () => number;
}

/** How a decision's signal is raised again: its key is what the router would give it. */
function seedMutation(s: ActiveSignal, computedAtMs: number): Mutation {
  const since = Date.parse(s.since);
  const exp = s.expiresAt === null ? -1 : Date.parse(s.expiresAt);
  const signalId = s.attributes.signalId;
  const kind = SignalKind.safeParse(s.attributes.kind);
  // A SOC signal carries its id and kind (derive.ts): its key must be the one a clear will name.
  const soc = signalId !== undefined && kind.success && s.attributes.raisedBy !== undefined;
  const ids = s.sourceEventIds.length > 0 ? s.sourceEventIds : ['seed'];
  return {
    t: 'm',
    k: soc ? socKey(s.scope, s.ref, signalId, kind.data) : signalKey(s.code, s.scope, s.ref),
    code: s.code,
    scope: s.scope,
    ref: s.ref,
    cl: false,
    lf: 0,
    // Live when the decision was made: a clear after that still wins, one before it does not.
    rs: ids.map((id) => [since, exp, computedAtMs, id, { ...s.attributes }] as const),
  };
}

/**
 * Reads the decisions topic and raises every live signal of every identity's last decision again.
 * Returns the highest epoch any decision was published in.
 */
export async function seedFromDecisions(d: RecoveryDeps): Promise<{ maxEpoch: number; identities: number }> {
  const now = (d.clock ?? Date.now)();
  const last = new Map<string, Decision | DecisionV2>();
  /** The latest decision per identity that no trusted key signed (forged, or an old key's). */
  const unverified = new Map<string, Decision | DecisionV2>();
  const keepLatest = (into: Map<string, Decision | DecisionV2>, decision: Decision | DecisionV2) => {
    const before = into.get(decision.identityId);
    if (!before || before.sequence < decision.sequence) into.set(decision.identityId, decision);
  };
  let maxEpoch = 0;
  let unreadable = 0;
  let unsigned = 0;
  await readTopicToEnd(
    d.kafka,
    d.decisionsTopic,
    (messages) => {
      for (const m of messages) {
        if (!m.value) continue;
        const signature = d.verifier.verify(m.value, m.headers[SIGNATURE_HEADER]);
        // The epoch from the signed sequence first: a decision whose value this engine cannot read
        // (a format it does not know) still holds the store's new epoch above it, or sequences would
        // go back and readers would keep the older decision.
        if (signature.ok && signature.seq !== undefined && signature.seq > 0)
          maxEpoch = Math.max(maxEpoch, epochOf(signature.seq));
        let decision: Decision | DecisionV2;
        try {
          // Either format: seeding needs the envelope and the signals, which both carry as they are.
          const parsed = PublishedDecision.safeParse(JSON.parse(m.value.toString('utf8')));
          if (!parsed.success) throw new Error(parsed.error.message);
          decision = parsed.data;
        } catch {
          unreadable++;
          continue;
        }
        if (!signature.ok || signature.seq !== decision.sequence) {
          // Never the one an identity is rebuilt from, nor a source of epochs: a forgery could be
          // lenient, or outrank every real sequence. Its signals are raised besides, below.
          unsigned++;
          keepLatest(unverified, decision);
          continue;
        }
        maxEpoch = Math.max(maxEpoch, epochOf(decision.sequence));
        keepLatest(last, decision);
      }
    },
    { groupIdPrefix: d.groupIdPrefix },
  );
  const channelSeeds = new Map<string, Mutation[]>();
  const work: Array<() => Promise<unknown>> = [];
  // Signals only ever tighten: those of a decision no trusted key signed are raised too, so a
  // genuine decision under a key left out of DECISION_PUBLIC_KEYS is not lost to the rebuild.
  const trusted = new Set(last.values());
  for (const decision of [...last.values(), ...unverified.values()]) {
    const at = Date.parse(decision.computedAt);
    const mutations = decision.signals
      .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now)
      .map((s) => seedMutation(s, at));
    for (const m of mutations) {
      if (m.t !== 'm' || m.ref === null || !(CHANNEL_TYPES as readonly string[]).includes(m.scope)) continue;
      const list = channelSeeds.get(m.ref) ?? [];
      list.push(m);
      channelSeeds.set(m.ref, list);
    }
    if (mutations.length === 0) continue;
    // A tenant decides which tenant-bound tokens may see the identity: only a trusted decision sets it.
    const tenant =
      decision.tenantId === null || !trusted.has(decision) ? null : { id: decision.tenantId, at };
    work.push(() => d.state.apply(decision.identityId, { mutations, tenant }, now));
  }
  for (const [ref, mutations] of channelSeeds) work.push(() => d.state.channelSignal(ref, mutations, now));
  for (let i = 0; i < work.length; i += 256) await Promise.all(work.slice(i, i + 256).map((f) => f()));
  if (unsigned > 0) {
    d.metrics.unsignedDecisions.inc(unsigned);
    d.logger.error(
      { unsigned },
      'decisions without a valid signature of a trusted key (forged, or signed with a key no longer trusted: DECISION_PUBLIC_KEYS): their signals were raised, nothing else was taken from them',
    );
  }
  if (unreadable > 0) {
    d.logger.warn({ unreadable }, 'decisions that do not parse were left out of the seed');
  }
  d.logger.info(
    { identities: last.size, seeded: work.length, maxEpoch },
    'seeded the store from the decisions topic',
  );
  return { maxEpoch, identities: last.size };
}

/**
 * A store with no fingerprint: either new, or lost as a whole (flushed, a fresh Redis, a changed
 * REDIS_PREFIX or database). Both are handled the same way, under a lock so one engine does it:
 * mark what must be replayed, seed from the decisions topic, and write the fingerprint in an epoch
 * past every sequence published. Other engines wait for the fingerprint.
 */
export async function recoverLostStore(d: RecoveryDeps, markFirst: () => Promise<number>): Promise<number> {
  const token = randomUUID();
  const lockMs = 60_000;
  for (;;) {
    if (await d.meta.lockRecovery(token, lockMs)) break;
    const fp = await d.meta.fingerprint();
    if (fp) return fp.epoch;
    d.logger.info('another engine is recovering the store; waiting');
    await new Promise((r) => setTimeout(r, 1000));
  }
  const renew = setInterval(() => void d.meta.lockRecovery(token, lockMs).catch(() => {}), lockMs / 3);
  try {
    const existing = await d.meta.fingerprint();
    if (existing) return existing.epoch;
    // Partitions to replay first (so readers wait for them), then what the decisions topic holds.
    const behind = await markFirst();
    const { maxEpoch, identities } = await seedFromDecisions(d);
    if (behind > 0 || identities > 0) {
      d.metrics.storeRecoveries.inc({ kind: 'lost' });
      d.logger.warn(
        { partitions: behind, identities },
        'the store has no fingerprint: rebuilding it from Kafka before deciding anything',
      );
    } else {
      d.logger.info('a new store: writing its fingerprint');
    }
    // Nothing ever published: a new deployment starts at epoch 0 (sequences 1, 2, 3…); otherwise one
    // past every epoch a decision was published in.
    const epoch = identities === 0 ? 0 : maxEpoch + 1;
    if (epoch > MAX_EPOCH) {
      throw new AssuranceError(
        'state_corrupt',
        `the decisions topic holds epoch ${maxEpoch}, the last one sequences can carry`,
      );
    }
    const { fingerprint } = await d.meta.initFingerprint({
      format: STATE_FORMAT,
      prefix: d.prefix,
      secret: d.secretDigest,
      policy: d.policyDigest,
      epoch,
      createdAt: new Date((d.clock ?? Date.now)()).toISOString(),
    });
    return fingerprint.epoch;
  } finally {
    clearInterval(renew);
    await d.meta.unlockRecovery(token).catch(() => {});
  }
}
