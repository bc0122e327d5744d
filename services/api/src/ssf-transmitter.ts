import type { Logger } from '@assurance/core';
import type { ConsumerPort, InboundMessage, ProducerPort } from '@assurance/kafka';
import { expandDecision, type Policy } from '@assurance/policy';
import type { SsfTransmitStore, StoredStream } from '@assurance/redis';
import type { Decision, DecisionV2 } from '@assurance/schemas';
import { eventsFor, jtiOf, type SentState, type SetSigner, sentStateOf } from '@assurance/ssf';
import type { ApiMetrics } from './metrics.ts';

/**
 * Our Shared Signals transmitter, in the API process: it reads the decisions topic (one consumer
 * group over every API replica, so each decision is handled once, at least), turns what changed
 * for an identity into SETs (packages/ssf transmit.ts) for every stream that wants them, and
 * queues them in each stream's outbox in Redis. Poll streams are drained by their receivers
 * (RFC 8936); push streams by `pushOnce`, every replica, with retries and backoff, and a SET that
 * never gets through is dead-lettered (`delivery_failed`).
 *
 * What was last sent per identity is recorded after the SETs are queued, so a crash in between
 * queues them again, under the same jti: receivers apply a SET once.
 */
export interface TransmitterDeps {
  readonly signer: SetSigner;
  readonly store: SsfTransmitStore;
  readonly policy: Policy;
  readonly producer: ProducerPort;
  readonly dlqTopic: string;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  /** Pushes give up after this many attempts (default 10: about 8 minutes of backoff). */
  readonly maxAttempts?: number;
  readonly fetch?: typeof fetch;
  readonly clock?: () => number;
}

export class SsfTransmitter {
  readonly #d: TransmitterDeps;
  #streams: { at: number; list: StoredStream[] } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #pushing: Promise<void> | undefined;
  #consumer: ConsumerPort | undefined;

  constructor(deps: TransmitterDeps) {
    this.#d = deps;
  }

  get #now(): number {
    return (this.#d.clock ?? Date.now)();
  }

  /** The streams, read at most once a second (a new stream takes a second to be served). */
  async #liveStreams(): Promise<StoredStream[]> {
    const now = this.#now;
    if (!this.#streams || now - this.#streams.at > 1000)
      this.#streams = { at: now, list: await this.#d.store.streams() };
    return this.#streams.list;
  }

  /** Forgets the cached streams (one was created, changed or deleted here). */
  invalidate(): void {
    this.#streams = undefined;
  }

  /** Consumes decisions with `consumer` and pushes every 500 ms until stopped. */
  async start(consumer: ConsumerPort): Promise<void> {
    this.#consumer = consumer;
    await consumer.start((messages) => this.handle(messages));
    this.#timer = setInterval(() => {
      this.#pushing ??= this.pushOnce()
        .catch((err: unknown) => this.#d.logger.warn({ err }, 'Shared Signals push round failed'))
        .finally(() => {
          this.#pushing = undefined;
        });
    }, 500);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#pushing;
    await this.#consumer?.stop();
  }

  /** One batch of decisions: each identity's events queued, then remembered as sent. */
  async handle(messages: readonly InboundMessage[]): Promise<{ processed: number; retryAfterMs?: number }> {
    for (const [i, m] of messages.entries()) {
      if (!m.value) continue;
      let d: Decision;
      try {
        d = expandDecision(this.#d.policy, JSON.parse(m.value.toString('utf8')) as Decision | DecisionV2);
      } catch (err) {
        // Not ours to judge (the engine wrote it); nothing to tell receivers from it.
        this.#d.logger.warn({ err, offset: m.offset, partition: m.partition }, 'unreadable decision skipped');
        continue;
      }
      try {
        await this.#transmit(d);
      } catch (err) {
        this.#d.logger.warn(
          { err: (err as Error).message },
          'cannot queue Security Event Tokens now; retrying',
        );
        return { processed: i, retryAfterMs: 1000 };
      }
    }
    return { processed: messages.length };
  }

  async #transmit(d: Decision): Promise<void> {
    const previous = await this.#d.store.lastSent<SentState>(d.identityId);
    const events = eventsFor(previous, d);
    if (events.length > 0) {
      const streams = (await this.#liveStreams()).filter(
        (s) => s.status !== 'disabled' && !s.removed.includes(d.identityId),
      );
      for (const s of streams)
        for (const event of events) {
          if (!s.events_delivered.includes(event.type)) continue;
          const jti = jtiOf(s.stream_id, d.identityId, d.sequence, event.type);
          const token = await this.#d.signer.sign({
            audience: s.aud,
            jti,
            txn: String(d.sequence),
            subject: { format: 'iss_sub', iss: this.#d.signer.issuer, sub: d.identityId },
            event,
          });
          await this.#d.store.enqueue(s.stream_id, jti, token, this.#now);
          this.#d.metrics.ssfQueued.inc({ event: event.type.split('/').at(-1) ?? 'unknown' });
        }
    }
    if (previous === undefined || d.sequence > previous.sequence)
      await this.#d.store.setLastSent(d.identityId, sentStateOf(d));
  }

  /** One round over the enabled push streams: what is due is sent, and retried or dead-lettered. */
  async pushOnce(): Promise<void> {
    const maxAttempts = this.#d.maxAttempts ?? 10;
    for (const s of await this.#liveStreams()) {
      if (s.status !== 'enabled' || s.delivery.method !== 'urn:ietf:rfc:8935' || !s.delivery.endpoint_url)
        continue;
      const due = await this.#d.store.claim(s.stream_id, this.#now, 30_000, 50);
      for (const set of due) {
        const outcome = await this.#push(s, set.token);
        if (outcome === 'accepted' || outcome === 'refused') {
          await this.#d.store.remove(s.stream_id, [set.jti]);
          this.#d.metrics.ssfPushed.inc({ outcome });
          continue;
        }
        if (set.tries >= maxAttempts) {
          await this.#deadLetter(s, set.jti, set.token, outcome);
          await this.#d.store.remove(s.stream_id, [set.jti]);
          this.#d.metrics.ssfPushed.inc({ outcome: 'dead_lettered' });
          continue;
        }
        // 1 s, 2 s, 4 s ... up to 5 minutes.
        await this.#d.store.retryAt(
          s.stream_id,
          set.jti,
          this.#now + Math.min(1000 * 2 ** (set.tries - 1), 300_000),
        );
        this.#d.metrics.ssfPushed.inc({ outcome: 'retry' });
      }
    }
  }

  async #push(s: StoredStream, token: string): Promise<'accepted' | 'refused' | string> {
    try {
      const r = await (this.#d.fetch ?? fetch)(s.delivery.endpoint_url as string, {
        method: 'POST',
        headers: {
          'content-type': 'application/secevent+jwt',
          accept: 'application/json',
          ...(s.delivery.authorization_header ? { authorization: s.delivery.authorization_header } : {}),
        },
        body: token,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await r.text();
      if (r.status === 202 || r.status === 200) return 'accepted';
      // The receiver judged the SET and will never take it (RFC 8935 §2.3): retrying cannot help.
      if (r.status === 400) {
        this.#d.logger.warn({ stream: s.stream_id, answer: text.slice(0, 300) }, 'receiver refused a SET');
        return 'refused';
      }
      return `http ${r.status}`;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async #deadLetter(s: StoredStream, jti: string, token: string, why: string): Promise<void> {
    await this.#d.producer.send([
      {
        topic: this.#d.dlqTopic,
        key: `ssf:${s.stream_id}`,
        value: token,
        headers: {
          'x-error-class': 'delivery_failed',
          'x-error-message': `push to the receiver ${s.receiver} failed after retries: ${why}`.slice(0, 1000),
          'x-ssf-stream': s.stream_id,
          'x-ssf-jti': jti,
        },
      },
    ]);
    this.#d.logger.error({ stream: s.stream_id, jti, why }, 'Security Event Token dead-lettered');
  }
}
