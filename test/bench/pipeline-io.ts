/**
 * The benchmark's side of Kafka, through our port: pre-encoding events (JSON and registry Avro,
 * alternately), producing them in large batches or at a fixed rate, watching decisions arrive, and
 * telling when the engine has drained everything it was given.
 */
import type { Logger } from '@assurance/core';
import type { AdminPort, createKafka, OutboundMessage, ProducerPort, RegistryCodec } from '@assurance/kafka';
import { createConsumer } from '@assurance/kafka';
import { INPUT_ROLES, type TopicNames } from '@assurance/schemas';
import { uniqueName } from '../src/harness.ts';
import type { Progress } from './progress.ts';
import type { BenchEvent } from './workload.ts';

export interface Encoded {
  readonly messages: OutboundMessage[];
  readonly json: number;
  readonly avro: number;
  readonly bytes: number;
}

/** Even positions as plain JSON, odd ones in the registry wire format under `<topic>-value`. */
export async function encodeAll(
  events: readonly BenchEvent[],
  topics: TopicNames,
  codec: RegistryCodec,
  bar?: Progress,
): Promise<Encoded> {
  const messages: OutboundMessage[] = new Array(events.length);
  let avro = 0;
  let bytes = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as BenchEvent;
    const topic = topics[e.role];
    const value =
      i % 2 === 1 ? await codec.encode(`${topic}-value`, e.value) : Buffer.from(JSON.stringify(e.value));
    if (i % 2 === 1) avro++;
    bytes += value.length;
    messages[i] = { topic, key: e.key, value };
    if (i % 1000 === 0) bar?.update(i);
  }
  bar?.update(events.length);
  return { messages, json: events.length - avro, avro, bytes };
}

/** Committed lag of the engine's two stages, summed over partitions. */
export async function pipelineLag(
  admin: AdminPort,
  topics: TopicNames,
  groupId: string,
): Promise<{ routerLag: number; deciderLag: number }> {
  const lagOf = async (group: string, topic: string) =>
    (await admin.lag(group, topic)).reduce((s, p) => s + p.lag, 0);
  // In pipeline order: the router commits only after its internal messages are acknowledged, the
  // decider only after its decisions are, so reading stage by stage never misses work in between.
  const routerLags = await Promise.all(INPUT_ROLES.map((r) => lagOf(`${groupId}.router`, topics[r])));
  const deciderLag = await lagOf(`${groupId}.decider`, topics.identityEvents);
  return { routerLag: routerLags.reduce((a, b) => a + b, 0), deciderLag };
}

/**
 * As fast as the engine admits: sequential sends of `chunk` messages (idempotent producer), each
 * once fewer than `window` events are produced and not yet decided (0: no window, all at once).
 */
export async function produceAll(args: {
  producer: ProducerPort;
  messages: readonly OutboundMessage[];
  chunk: number;
  window: number;
  inFlight: () => Promise<number>;
  onProgress?: (sent: number) => void;
  signal?: AbortSignal;
}): Promise<void> {
  const { messages, chunk, window } = args;
  for (let i = 0; i < messages.length; i += chunk) {
    const size = Math.min(chunk, messages.length - i);
    if (window > 0) {
      while ((await args.inFlight()) + size > window) {
        args.signal?.throwIfAborted();
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    args.signal?.throwIfAborted();
    await args.producer.send(messages.slice(i, i + size));
    args.onProgress?.(i + size);
  }
}

/**
 * At a fixed offered rate: message i is due at `start + i / rate`. Whatever is due goes out in one
 * send as soon as the previous send was acknowledged; `offeredAt[i]` is the due time, not the actual
 * send, so producer back-pressure counts against latency (no coordinated omission).
 */
export async function produceAtRate(
  producer: ProducerPort,
  messages: readonly OutboundMessage[],
  rate: number,
  offeredAt: Float64Array,
  onProgress?: (sent: number) => void,
  signal?: AbortSignal,
): Promise<{ wallMs: number; sends: number }> {
  const start = performance.now();
  for (let i = 0; i < messages.length; i++) offeredAt[i] = start + (i * 1000) / rate;
  let sent = 0;
  let sends = 0;
  while (sent < messages.length) {
    signal?.throwIfAborted();
    const due = Math.min(messages.length, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    if (due > sent) {
      await producer.send(messages.slice(sent, due));
      sends++;
      sent = due;
      onProgress?.(sent);
    } else {
      const next = offeredAt[sent] as number;
      await new Promise((r) => setTimeout(r, Math.max(1, next - performance.now())));
    }
  }
  return { wallMs: performance.now() - start, sends };
}

const TRIGGER = '"trigger":{"eventId":"';
const COMPUTED_AT = '"computedAt":"';

/**
 * Counts every decision of the namespace as it arrives; for decisions triggered by a latency-phase
 * event (`<latencyPrefix>-<n>`), records arrival − offered time.
 */
/** One latency phase's samples. */
export interface LatencySamples {
  readonly latenciesMs: number[];
  /** The same samples split at the decision's computedAt: offered → computed, computed → received. */
  readonly upstreamMs: number[];
  readonly downstreamMs: number[];
  /** Latency-phase events that produced at least one decision. */
  readonly decidedEvents: Set<number>;
}

export class DecisionSink {
  count = 0;
  lastArrival = 0;
  /** Bytes of decision values. */
  decisionBytes = 0;
  #samples: LatencySamples = { latenciesMs: [], upstreamMs: [], downstreamMs: [], decidedEvents: new Set() };
  #offeredAt: Float64Array | undefined;
  #latencyPrefix = '';
  /** Decisions counted by their trigger's event id (watchTrigger), with the last arrival time. */
  readonly #watched = new Map<string, { count: number; lastAt: number }>();
  #stop: (() => Promise<void>) | undefined;

  static async start(
    kafka: ReturnType<typeof createKafka>,
    topics: TopicNames,
    logger: Logger,
  ): Promise<DecisionSink> {
    const sink = new DecisionSink();
    const consumer = createConsumer(
      kafka,
      {
        groupId: uniqueName('bench-decisions'),
        topics: [topics.decisions],
        fromBeginning: true,
        concurrency: 3,
      },
      logger,
    );
    await consumer.start(async (messages) => {
      const now = performance.now();
      for (const m of messages) sink.decisionBytes += m.value?.length ?? 0;
      sink.count += messages.length;
      sink.lastArrival = now;
      if (sink.#offeredAt) {
        for (const m of messages) sink.#observe(m.value, now);
      }
      if (sink.#watched.size > 0) {
        for (const m of messages) sink.#count(m.value, now);
      }
      return { processed: messages.length };
    });
    sink.#stop = () => consumer.stop();
    return sink;
  }

  /**
   * From now on, decisions triggered by `<prefix>-<n>` are timed against `offeredAt[n]`, into the
   * samples returned (each phase its own).
   */
  timeLatency(prefix: string, offeredAt: Float64Array): LatencySamples {
    this.#latencyPrefix = `${prefix}-`;
    this.#offeredAt = offeredAt;
    this.#samples = { latenciesMs: [], upstreamMs: [], downstreamMs: [], decidedEvents: new Set() };
    return this.#samples;
  }

  /** From now on, counts decisions whose trigger is event `eventId`, and when the last arrived. */
  watchTrigger(eventId: string): { count: number; lastAt: number } {
    const w = { count: 0, lastAt: 0 };
    this.#watched.set(eventId, w);
    return w;
  }

  #count(value: Buffer | null, now: number): void {
    if (!value) return;
    const text = value.toString('utf8');
    const at = text.lastIndexOf(TRIGGER);
    if (at < 0) return;
    const start = at + TRIGGER.length;
    const w = this.#watched.get(text.slice(start, text.indexOf('"', start)));
    if (!w) return;
    w.count++;
    w.lastAt = now;
  }

  #observe(value: Buffer | null, now: number): void {
    if (!value || !this.#offeredAt) return;
    const text = value.toString('utf8');
    const at = text.lastIndexOf(TRIGGER);
    if (at < 0) return;
    const start = at + TRIGGER.length;
    const id = text.slice(start, text.indexOf('"', start));
    if (!id.startsWith(this.#latencyPrefix)) return;
    const n = Number(id.slice(this.#latencyPrefix.length));
    const offered = this.#offeredAt[n];
    if (offered === undefined || offered === 0) return;
    const samples = this.#samples;
    samples.latenciesMs.push(now - offered);
    samples.decidedEvents.add(n);
    // Split at the decision's computedAt (the engine's wall clock; same machine, same clock).
    const c = text.indexOf(COMPUTED_AT);
    if (c >= 0) {
      const from = c + COMPUTED_AT.length;
      const computedWall = Date.parse(text.slice(from, text.indexOf('"', from)));
      const computed = computedWall - performance.timeOrigin;
      samples.upstreamMs.push(computed - offered);
      samples.downstreamMs.push(now - computed);
    }
  }

  async stop(): Promise<void> {
    await this.#stop?.();
  }
}

export interface DrainState {
  readonly routerLag: number;
  readonly deciderLag: number;
  readonly published: number;
  readonly received: number;
}

/** The engine stopped making progress: no commit by either stage and no decision for a while. */
export class StallError extends Error {
  override readonly name = 'StallError';
  readonly state: DrainState;
  constructor(state: DrainState, forMs: number) {
    super(
      `engine made no progress for ${Math.round(forMs / 1000)} s: router lag ${state.routerLag}, decider lag ${state.deciderLag}, decisions ${state.received}/${state.published}`,
    );
    this.state = state;
  }
}

/**
 * Waits until the engine has committed every input message (router) and every internal message
 * (decider) — it commits only after its outputs are acknowledged — and the sink has received every
 * decision the engine reports published. Resolves with the time that was first observed.
 */
export async function waitDrained(args: {
  admin: AdminPort;
  topics: TopicNames;
  groupId: string;
  sink: DecisionSink;
  published: () => Promise<number>;
  onPoll?: (s: DrainState) => void;
  /** Drain is judged only once this says everything was produced (lags read 0 before a send lands). */
  produced: () => boolean;
  pollMs?: number;
  /** Give up when neither stage commits nor a decision arrives for this long (default 60 s). */
  stallMs?: number;
  timeoutMs?: number;
  failed?: Promise<never>;
}): Promise<{ at: number; state: DrainState; mismatch: boolean }> {
  const deadline = performance.now() + (args.timeoutMs ?? 1_800_000);
  let stableSince = 0;
  let lastReceived = -1;
  let progressSig = '';
  let progressAt = performance.now();
  const stallMs = args.stallMs ?? 60_000;
  for (;;) {
    // Read before the offsets, so a send that lands during this poll is never judged drained.
    const produced = args.produced();
    const { routerLag, deciderLag } = await pipelineLag(args.admin, args.topics, args.groupId);
    // After the lags: once both stages committed, every decision they made is already counted.
    const published = await args.published();
    const at = performance.now();
    const state: DrainState = {
      routerLag,
      deciderLag,
      published,
      received: args.sink.count,
    };
    args.onPoll?.(state);
    if (produced && state.routerLag === 0 && state.deciderLag === 0) {
      if (state.received >= state.published) return { at, state, mismatch: false };
      // A retried batch can count a decision twice; if nothing more arrives for 5 s, stop waiting.
      if (state.received !== lastReceived) {
        lastReceived = state.received;
        stableSince = at;
      } else if (at - stableSince > 5000) return { at, state, mismatch: true };
    }
    const sig = `${produced}|${state.routerLag}|${state.deciderLag}|${state.received}`;
    if (sig !== progressSig) {
      progressSig = sig;
      progressAt = at;
    } else if ((produced || routerLag + deciderLag > 0) && at - progressAt > stallMs) {
      throw new StallError(state, at - progressAt);
    }
    if (at > deadline) throw new Error(`engine did not drain: ${JSON.stringify(state)}`);
    const tick = new Promise((r) => setTimeout(r, args.pollMs ?? 200));
    await (args.failed ? Promise.race([tick, args.failed]) : tick);
  }
}

/** Average value size of the first `n` messages of a topic (e.g. the audit records the engine wrote). */
export async function sampleSizes(
  kafka: ReturnType<typeof createKafka>,
  topic: string,
  n: number,
  logger: Logger,
  timeoutMs = 30_000,
): Promise<{ messages: number; bytes: number }> {
  let messages = 0;
  let bytes = 0;
  let done: () => void = () => {};
  const enough = new Promise<void>((resolve) => {
    done = resolve;
  });
  const consumer = createConsumer(
    kafka,
    { groupId: uniqueName('bench-sizes'), topics: [topic], fromBeginning: true, concurrency: 1 },
    logger,
  );
  await consumer.start(async (batch) => {
    for (const m of batch) {
      if (messages >= n) break;
      messages++;
      bytes += m.value?.length ?? 0;
    }
    if (messages >= n) done();
    return { processed: batch.length };
  });
  const t = setTimeout(done, timeoutMs);
  await enough;
  clearTimeout(t);
  await consumer.stop();
  return { messages, bytes };
}
