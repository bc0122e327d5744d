import type { InboundMessage } from '@assurance/kafka';
import type { DeadLetterSink } from './dlq.ts';

/** How a stage treats a message that fails: what both stages are given (engine.ts builds it once). */
export interface FailurePolicy {
  /** How long a partition pauses before a failed batch is redone. */
  readonly retryBackoffMs: number;
  /** How long a message that itself keeps failing is retried before it is dead-lettered. */
  readonly retryBudgetMs: number;
  /** Bound of a dead-letter record's value (dlq.ts). */
  readonly dlqMaxBytes: number;
  readonly deadLetters: DeadLetterSink;
}

/** Failures remembered at most; beyond it the oldest are forgotten (their budget starts again). */
const MAX_TRACKED = 10_000;

/**
 * How long each message has been failing, so that one that fails by itself is given up on after a
 * bounded time instead of holding its partition forever. Kept in memory: after a restart a message
 * gets its budget again, which only delays the give-up.
 */
export class RetryBudget {
  readonly #budgetMs: number;
  readonly #firstFailure = new Map<string, number>();

  constructor(budgetMs: number) {
    this.#budgetMs = budgetMs;
  }

  /** Records a failure of `msg`; true once it has been failing for the whole budget. */
  spent(msg: InboundMessage, nowMs: number): boolean {
    const key = `${msg.topic}|${msg.partition}|${msg.offset}`;
    let first = this.#firstFailure.get(key);
    if (first === undefined) {
      if (this.#firstFailure.size >= MAX_TRACKED) {
        const oldest = this.#firstFailure.keys().next().value;
        if (oldest !== undefined) this.#firstFailure.delete(oldest);
      }
      first = nowMs;
      this.#firstFailure.set(key, first);
    }
    return nowMs - first >= this.#budgetMs;
  }

  /** The message is done (processed or dead-lettered): forget it. */
  done(msg: InboundMessage): void {
    if (this.#firstFailure.size > 0) this.#firstFailure.delete(`${msg.topic}|${msg.partition}|${msg.offset}`);
  }
}
