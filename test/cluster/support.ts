import type { EngineConfig } from '@assurance/engine';
import { EngineConfigSchema } from '@assurance/engine';
import type { TopicNames } from '@assurance/schemas';
import type { ClusterEndpoints } from '@assurance/stack';
import type { Admin } from 'kafkajs';
import { TEST_SECRET, TEST_SIGNING_KEY } from '../src/pipeline.ts';

/**
 * What the cluster runs share (chaos.ts, scale.ts): SOC raise and clear events with their oracle,
 * the engine groups' lag, and waiting.
 */

export const KINDS = ['credential_leak', 'suspicious_activity', 'token_theft', 'account_takeover'] as const;
export type Kind = (typeof KINDS)[number];

/** One event to send, keyed by its identity. */
export interface Op {
  readonly identity: string;
  readonly value: Record<string, unknown>;
}

export interface SocLoad {
  readonly ids: readonly string[];
  /** Events in the order they are sent; each identity's in time order. */
  readonly ops: readonly Op[];
  /** The oracle: per identity, the signals raised and not cleared (signal id → kind). */
  readonly expected: ReadonlyMap<string, ReadonlyMap<string, Kind>>;
}

/**
 * `events` SOC raises and clears over `identities` identities, named under `run`, with times spread
 * over `spanMs` from now (about when they are sent). Raises outnumber clears, so most identities
 * end with live signals (a lost raise shows), and every identity gets a clear now and then (a lost
 * clear shows too).
 */
export function socLoad(run: string, events: number, identities: number, spanMs: number): SocLoad {
  const ids = Array.from({ length: identities }, (_, i) => `chaos-${run}-${i}`);
  const expected = new Map<string, Map<string, Kind>>(ids.map((id) => [id, new Map()]));
  const ops: Op[] = [];
  const base = Date.now();
  const step = spanMs / events;
  let serial = 0;
  for (let n = 0; n < events; n++) {
    const identity = ids[n % identities] as string;
    const live = expected.get(identity) as Map<string, Kind>;
    const occurredAt = new Date(base + Math.floor(n * step)).toISOString();
    const envelope = { eventId: `ev-${run}-${n}`, occurredAt, source: 'chaos' };
    const subject = { type: 'identity', value: identity };
    if (live.size > 0 && (n * 7919) % 5 < 2) {
      const signalId = [...live.keys()][(n * 31) % live.size] as string;
      live.delete(signalId);
      ops.push({ identity, value: { ...envelope, signalId, op: 'clear', subject, raisedBy: 'soc' } });
    } else {
      const kind = KINDS[(n * 13 + serial) % KINDS.length] as Kind;
      const signalId = `s-${run}-${serial++}`;
      live.set(signalId, kind);
      ops.push({
        identity,
        value: { ...envelope, signalId, op: 'raise', subject, kind, severity: 'low', raisedBy: 'soc' },
      });
    }
  }
  return { ids, ops, expected };
}

/**
 * An engine's configuration on the clusters, on a namespace, groups and Redis prefix of its own
 * (`<name>-<run>`), with `overrides` on top.
 */
export function clusterEngineConfig(
  endpoints: ClusterEndpoints,
  name: string,
  run: string,
  overrides: Record<string, string> = {},
): EngineConfig {
  return EngineConfigSchema.parse({
    ...endpoints,
    CHANNEL_HASH_SECRET: TEST_SECRET,
    DECISION_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY),
    TOPIC_NAMESPACE: `${name}-${run}`,
    ENGINE_GROUP_ID: `${name}-${run}`,
    REDIS_PREFIX: `${name}${run}:`,
    INTERNAL_PARTITIONS: '6',
    METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    ...overrides,
  });
}

/** Messages the engine's router and decider groups have not committed yet, over their topics. */
export async function groupLag(admin: Admin, config: EngineConfig, topics: TopicNames): Promise<number> {
  const inputs = Object.entries(topics)
    .filter(([role]) => !['decisions', 'audit', 'dlq', 'shadow', 'identityEvents'].includes(role))
    .map(([, t]) => t);
  let lag = 0;
  for (const [group, groupTopics] of [
    [`${config.ENGINE_GROUP_ID}.router`, inputs],
    [`${config.ENGINE_GROUP_ID}.decider`, [topics.identityEvents]],
  ] as const) {
    const committed = await admin.fetchOffsets({ groupId: group, topics: [...groupTopics] });
    for (const t of committed) {
      const ends = await admin.fetchTopicOffsets(t.topic);
      for (const p of t.partitions) {
        const end = Number(ends.find((e) => e.partition === p.partition)?.high ?? 0);
        lag += Math.max(0, end - Math.max(0, Number(p.offset)));
      }
    }
  }
  return lag;
}

export function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 250 ms (a failing check counts as not yet) until it holds or time runs out. */
export async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await pause(250);
  }
}
