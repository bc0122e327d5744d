import type { Logger } from '@assurance/core';
import type { AdminPort, EngineHealth } from '@assurance/kafka';
import { EngineWatch } from '@assurance/kafka';
import type { TopicNames } from '@assurance/schemas';
import { engineStageGroups } from '@assurance/schemas';
import type { ApiMetrics } from './metrics.ts';
import type { DegradedReason } from './schemas.ts';

export interface EngineHealthOptions {
  readonly admin: AdminPort;
  /** The engine's group id: its stages consume as `<id>.router` and `<id>.decider`. */
  readonly groupId: string;
  readonly topics: TopicNames;
  readonly intervalMs: number;
  readonly maxStallMs: number;
  readonly maxAgeMs: number;
  readonly maxLag: number;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly clock?: () => number;
}

/**
 * Watches the engine's two stages from Kafka's offsets (EngineWatch): the router on the input
 * topics, the decider on the internal topic. Requests read the last sample; nothing is measured
 * per request.
 */
export function watchEngine(o: EngineHealthOptions): EngineWatch {
  return new EngineWatch({
    admin: o.admin,
    groups: engineStageGroups(o.groupId, o.topics),
    intervalMs: o.intervalMs,
    maxStallMs: o.maxStallMs,
    maxAgeMs: o.maxAgeMs,
    maxLag: o.maxLag,
    logger: o.logger,
    ...(o.clock ? { clock: o.clock } : {}),
    onSample: (health) => {
      if (health.state === 'unknown') return;
      o.metrics.engineStalled.set(health.stalled.length);
      for (const [stage, lag] of Object.entries(health.lagByStage)) o.metrics.engineLag.set({ stage }, lag);
    },
  });
}

/** Reasons the engine's health gives for not trusting any decision right now. */
export function healthReasons(health: EngineHealth): DegradedReason[] {
  switch (health.state) {
    case 'ok':
      return [];
    case 'stalled':
      return ['engine_stalled'];
    case 'lagging':
      return ['engine_lagging'];
    case 'unknown':
      return ['engine_lag_unknown'];
  }
}

/** A line for /readyz and logs: what the engine looks like from here. */
export function describeHealth(health: EngineHealth): string {
  if (health.state === 'unknown') {
    const when = health.ageMs === null ? 'never sampled' : `last sample ${health.ageMs} ms ago`;
    return `engine state unknown (${when}${health.error ? `; last error: ${health.error}` : ''})`;
  }
  const members = Object.entries(health.members)
    .map(([stage, n]) => `${stage} ${n === 0 ? 'down (no consumer)' : `${n} consumer${n === 1 ? '' : 's'}`}`)
    .join(', ');
  const stalled = health.stalled
    .slice(0, 3)
    .map(
      (s) =>
        `${s.stage} ${s.topic}[${s.partition}]: ${s.waiting} waiting ${(s.waitingMs / 1000).toFixed(1)} s`,
    )
    .join('; ');
  return `${health.lag} messages behind; ${members}${stalled ? `; stalled: ${stalled}` : ''}`;
}
