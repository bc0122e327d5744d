import type { Logger } from '@assurance/core';
import { asAssuranceError } from '@assurance/core';
import type { ProducerPort } from '@assurance/kafka';
import type { StateStore } from '@assurance/redis';
import { BASE_TOPICS, type TopicNames } from '@assurance/schemas';
import type { EngineMetrics } from './metrics.ts';
import type { RoutedMessage } from './routed.ts';

export interface SweeperDeps {
  readonly store: StateStore;
  readonly producer: ProducerPort;
  readonly topics: TopicNames;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  readonly intervalMs: number;
  readonly leaseMs: number;
  readonly batchSize?: number;
}

/**
 * Re-decides identities whose signals expire (docs/policy-behaviours.md, behaviour 9): claims due identities from Redis and
 * sends each an `expire` message on the internal topic, so the re-decision is made by the identity's
 * owner, in order with its other events. Any number of engines may sweep: a claim leases the entry,
 * and the re-decision reschedules it (see sweep-claim-1.lua).
 */
export class Sweeper {
  readonly #d: SweeperDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(deps: SweeperDeps) {
    this.#d = deps;
  }

  start(): void {
    const tick = () => {
      if (this.#stopped) return;
      this.#running = this.sweepOnce()
        .then(() => undefined)
        .catch((err: unknown) => {
          // Counted, so a sweeper that keeps failing shows up even though the backlog gauge freezes.
          this.#d.metrics.failures.inc({
            stage: 'sweeper',
            error: asAssuranceError(err, 'redis_unavailable').code,
          });
          this.#d.logger.warn({ err }, 'sweep failed; will retry');
        })
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#d.intervalMs);
        });
    };
    this.#timer = setTimeout(tick, this.#d.intervalMs);
  }

  /** One pass; returns how many identities were sent for re-decision. */
  async sweepOnce(): Promise<number> {
    const { store, producer, topics } = this.#d;
    const limit = this.#d.batchSize ?? 500;
    let total = 0;
    for (;;) {
      const nowMs = Date.now();
      const due = await store.claimDue(nowMs, this.#d.leaseMs, limit);
      if (due.length === 0) break;
      const occurredAt = new Date(nowMs).toISOString();
      await producer.send(
        due.map((identityId) => {
          const m: RoutedMessage = {
            v: 2,
            kind: 'expire',
            identityId,
            trigger: { eventId: `expiry:${nowMs}`, topic: BASE_TOPICS.identityEvents, occurredAt },
            receivedAtMs: nowMs,
          };
          return { topic: topics.identityEvents, key: identityId, value: JSON.stringify(m) };
        }),
      );
      total += due.length;
      if (due.length < limit) break;
    }
    this.#d.metrics.expiryBacklog.set(await store.dueBacklog(Date.now()));
    return total;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}
