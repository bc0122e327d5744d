import type { AssuranceError, Logger } from '@assurance/core';
import type { BatchResult, InboundMessage } from '@assurance/kafka';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The engine's own Prometheus registry (never the global one). Labels are bounded: topic names,
 * closed error codes, tiers, outcomes, risk levels. Never an identity, channel or address.
 */
export function createEngineMetrics(registry: Registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'assurance_engine_' });
  return {
    registry,
    consumed: new Counter({
      name: 'assurance_events_consumed_total',
      help: 'Input events consumed, by topic and result (ok, dead_letter)',
      labelNames: ['topic', 'result'] as const,
      registers: [registry],
    }),
    decoded: new Counter({
      name: 'assurance_events_decoded_total',
      help: 'Input events decoded, by topic and encoding (registry-avro, json)',
      labelNames: ['topic', 'encoding'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'assurance_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic and error class',
      labelNames: ['topic', 'error'] as const,
      registers: [registry],
    }),
    deadLettersUnwritten: new Counter({
      name: 'assurance_dead_letters_unwritten_total',
      help: 'Dead letters the broker refused to store (coordinates kept in Redis), by error class',
      labelNames: ['error'] as const,
      registers: [registry],
    }),
    unsignedDecisions: new Counter({
      name: 'assurance_unsigned_decisions_total',
      help: 'Decisions read back from the decisions topic (rebuilding a store) without a valid signature of a trusted key: forged, or signed with a key no longer trusted',
      registers: [registry],
    }),
    quarantined: new Counter({
      name: 'assurance_messages_quarantined_total',
      help: 'Messages that kept failing for the whole retry budget and were dead-lettered, by stage and error class',
      labelNames: ['stage', 'error'] as const,
      registers: [registry],
    }),
    progressOffset: new Gauge({
      name: 'assurance_engine_processed_offset',
      help: 'Next offset to process after the last batch, by stage, topic and partition',
      labelNames: ['stage', 'topic', 'partition'] as const,
      registers: [registry],
    }),
    progressTime: new Gauge({
      name: 'assurance_engine_progress_timestamp_seconds',
      help: 'When the last batch of a partition was processed (Unix time), by stage, topic and partition',
      labelNames: ['stage', 'topic', 'partition'] as const,
      registers: [registry],
    }),
    unchanged: new Counter({
      name: 'assurance_events_unchanged_total',
      help: 'Events that changed nothing a decision depends on (a replay, an older op, a login that raised nothing)',
      registers: [registry],
    }),
    shadowTransitions: new Counter({
      name: 'assurance_shadow_decisions_total',
      help: 'Live decisions a shadow policy evaluated, by shadow, tier and how its requirement would move (same, stricter, looser, route_change)',
      labelNames: ['shadow', 'tier', 'direction'] as const,
      registers: [registry],
    }),
    shadowErrors: new Counter({
      name: 'assurance_shadow_errors_total',
      help: 'Shadow policy evaluations that failed (their record says failed, with the strictest tiers)',
      labelNames: ['shadow'] as const,
      registers: [registry],
    }),
    shadowSlow: new Counter({
      name: 'assurance_shadow_slow_total',
      help: 'Shadow policy evaluations that took longer than 50 ms (off the live path)',
      labelNames: ['shadow'] as const,
      registers: [registry],
    }),
    shadowDropped: new Counter({
      name: 'assurance_shadow_dropped_total',
      help: 'Live decisions not shadowed because the shadow queue was full',
      labelNames: ['shadow'] as const,
      registers: [registry],
    }),
    shadowProduceFailures: new Counter({
      name: 'assurance_shadow_produce_failures_total',
      help: 'Batches of shadow records Kafka did not take (not retried: the stream is an analysis)',
      labelNames: ['shadow'] as const,
      registers: [registry],
    }),
    supersededLate: new Counter({
      name: 'assurance_decisions_superseded_late_total',
      help: 'Decisions acknowledged after a newer one of the same identity (a send that outlived its partition): the newer one was sent again after it',
      registers: [registry],
    }),
    decisionsSkipped: new Counter({
      name: 'assurance_decisions_skipped_total',
      help: 'Events not decided again: they changed nothing, and the recorded decision is settled (same policy, acknowledged, not due for renewal)',
      registers: [registry],
    }),
    evaluationFailures: new Counter({
      name: 'assurance_evaluation_failures_total',
      help: 'Policy evaluations that threw; each one decided fail-closed instead',
      registers: [registry],
    }),
    storeChecks: new Counter({
      name: 'assurance_store_checks_total',
      help: 'Checks of the Redis store fingerprint and epoch, by result (ok, verified, changed, unreachable)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    storeEpoch: new Gauge({
      name: 'assurance_store_epoch',
      help: 'The epoch of the Redis store the engine decides in (moves on each data loss found)',
      registers: [registry],
    }),
    storeRecoveries: new Counter({
      name: 'assurance_store_recoveries_total',
      help: 'Data losses found in the Redis store, by kind (replay: replayed from Kafka; gap: also seeded from the decisions topic; lost: the whole store)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    capOverflows: new Counter({
      name: 'assurance_state_overflows_total',
      help: 'Identities that reached a cap on their state (signals, bindings) and now fail closed',
      registers: [registry],
    }),
    fanout: new Histogram({
      name: 'assurance_channel_fanout_identities',
      help: 'Identities a page of a channel fan-out reached (the first page with the event, the rest from the fan-out queue)',
      buckets: [0, 1, 2, 5, 10, 50, 100, 500, 1000],
      registers: [registry],
    }),
    fanoutPages: new Counter({
      name: 'assurance_channel_fanout_pages_total',
      help: 'Queued fan-out pages sent, by what came of the cursor (more, done, superseded by a newer event, moved by another worker)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    fanoutBacklog: new Gauge({
      name: 'assurance_channel_fanout_backlog',
      help: 'Channel fan-outs with pages still to send',
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'assurance_decisions_published_total',
      help: 'Decisions published, by risk level',
      labelNames: ['risk'] as const,
      registers: [registry],
    }),
    tierOutcomes: new Counter({
      name: 'assurance_decision_tier_outcomes_total',
      help: 'Tier outcomes in published decisions, by tier and outcome',
      labelNames: ['tier', 'outcome'] as const,
      registers: [registry],
    }),
    inputWait: new Histogram({
      name: 'assurance_input_wait_seconds',
      help: "From a message's Kafka timestamp to the stage starting on it, by stage: how long input waits for the engine",
      labelNames: ['stage'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'assurance_batch_seconds',
      help: 'How long a stage took over one batch, from its start to its output acknowledged, by stage',
      labelNames: ['stage'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'assurance_event_to_decision_seconds',
      help: 'From the router receiving an event to its decision being acknowledged by Kafka',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'assurance_consumer_lag',
      help: 'Messages behind the high watermark after the last batch, by stage, topic and partition',
      labelNames: ['stage', 'topic', 'partition'] as const,
      registers: [registry],
    }),
    expiryBacklog: new Gauge({
      name: 'assurance_expiry_backlog',
      help: 'Identities whose signal expiry is due and not yet re-decided',
      registers: [registry],
    }),
    redisScript: new Histogram({
      name: 'assurance_redis_script_seconds',
      help: 'Duration of each Redis Lua script call, by script and result',
      labelNames: ['script', 'result'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'assurance_processing_retries_total',
      help: 'Batches stopped early for a transient failure, by stage and error class',
      labelNames: ['stage', 'error'] as const,
      registers: [registry],
    }),
  };
}

export type EngineMetrics = ReturnType<typeof createEngineMetrics>;

/**
 * How long each message waited between its Kafka timestamp and the stage starting on it. A producer
 * clock far off (a timestamp ahead of ours, or older than a day: a replay) says nothing about the
 * engine's speed and is left out.
 */
export function observeWait(
  metrics: EngineMetrics,
  stage: 'router' | 'decider',
  messages: readonly InboundMessage[],
  nowMs: number,
): void {
  for (const m of messages) {
    const waited = nowMs - m.timestampMs;
    if (waited >= 0 && waited < 86_400_000) metrics.inputWait.observe({ stage }, waited / 1000);
  }
}

/** Runs one batch of a stage, observed in `assurance_batch_seconds`. */
export async function timedBatch<T>(
  metrics: EngineMetrics,
  stage: 'router' | 'decider',
  run: () => Promise<T>,
): Promise<T> {
  const end = metrics.batchSeconds.startTimer({ stage });
  try {
    return await run();
  } finally {
    end();
  }
}

/**
 * The result of a stage's batch that stopped at `processed` on `error`: counted, logged, and
 * handed back to the consumer to redo the rest after the backoff.
 */
export function stoppedEarly(
  d: { metrics: EngineMetrics; logger: Logger; retryBackoffMs: number },
  stage: 'router' | 'decider',
  processed: number,
  error: AssuranceError,
): BatchResult {
  d.metrics.failures.inc({ stage, error: error.code });
  d.logger.warn({ code: error.code, err: error.message }, `${stage} batch stopped early; will retry`);
  return { processed, retryAfterMs: d.retryBackoffMs, reason: error.code };
}
