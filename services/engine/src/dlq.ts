import { createHash } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { AssuranceError } from '@assurance/core';
import type { InboundMessage, OutboundMessage, ProducerPort } from '@assurance/kafka';
import { DLQ_HEADERS } from '@assurance/schemas';

/** Header values must stay small and printable; the reason is for people, the class for machines. */
function clip(s: string, max = 1000): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Keys are identifiers, not payloads: anything longer is abuse and is cut. */
const KEY_MAX_BYTES = 1024;
/** Original headers kept on a dead letter (a replay tool re-sends them), each clipped. */
const HEADERS_MAX = 32;
const OURS = new Set<string>(Object.values(DLQ_HEADERS));

/**
 * The dead-letter record of `msg` (docs/dead-letters.md): the original key and bytes with the reason
 * in headers, bounded so the broker always takes it. Above `maxValueBytes` the value keeps its first
 * bytes and the headers say so, with the original size and sha256 (a message that came compressed
 * can be far larger once decompressed than anything the broker accepts uncompressed).
 */
export function deadLetter(
  dlqTopic: string,
  msg: InboundMessage,
  error: AssuranceError,
  maxValueBytes: number,
): OutboundMessage {
  const value = msg.value ?? Buffer.alloc(0);
  const truncated: string[] = [];
  const extra: Record<string, string> = {};
  let keptValue = value;
  if (value.length > maxValueBytes) {
    keptValue = value.subarray(0, maxValueBytes);
    truncated.push('value');
    extra[DLQ_HEADERS.originalBytes] = String(value.length);
    extra[DLQ_HEADERS.originalSha256] = createHash('sha256').update(value).digest('hex');
  }
  let key = msg.key;
  if (key && key.length > KEY_MAX_BYTES) {
    key = key.subarray(0, KEY_MAX_BYTES);
    truncated.push('key');
  }
  if (truncated.length > 0) extra[DLQ_HEADERS.truncated] = truncated.join(',');
  const original: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg.headers).slice(0, HEADERS_MAX)) {
    // A producer cannot forge our own headers onto its dead letter.
    if (!OURS.has(k)) original[clip(k, 200)] = clip(v);
  }
  return {
    topic: dlqTopic,
    key,
    value: keptValue,
    headers: {
      ...original,
      ...extra,
      [DLQ_HEADERS.errorClass]: error.code,
      [DLQ_HEADERS.errorMessage]: clip(error.message),
      [DLQ_HEADERS.sourceTopic]: msg.topic,
      [DLQ_HEADERS.sourcePartition]: String(msg.partition),
      [DLQ_HEADERS.sourceOffset]: msg.offset,
      [DLQ_HEADERS.sourceTimestamp]: new Date(msg.timestampMs).toISOString(),
    },
  };
}

/** Where a dead letter the broker refuses is recorded instead (a Redis list, see SignalStore). */
export interface UnwrittenRecorder {
  recordUnwrittenDeadLetter(entry: Readonly<Record<string, string>>): Promise<void>;
}

/**
 * Writes dead letters with a producer of their own (not idempotent: a refused record must not
 * leave the pipeline's idempotent producer out of sequence). If the broker refuses one for good
 * (a topic limit below our bound, an ACL), its coordinates and reason go to the log, a metric and
 * Redis, and the pipeline moves on: a dead letter must never stop the engine. A broker that is
 * merely away fails the write, and the batch is retried.
 */
export class DeadLetterSink {
  readonly #producer: ProducerPort;
  readonly #recorder: UnwrittenRecorder;
  readonly #onUnwritten: (code: string) => void;
  readonly #logger: Logger;

  constructor(deps: {
    producer: ProducerPort;
    recorder: UnwrittenRecorder;
    onUnwritten: (code: string) => void;
    logger: Logger;
  }) {
    this.#producer = deps.producer;
    this.#recorder = deps.recorder;
    this.#onUnwritten = deps.onUnwritten;
    this.#logger = deps.logger;
  }

  async write(records: readonly OutboundMessage[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.#producer.send(records);
      return;
    } catch (err) {
      if (!refused(err)) throw err;
    }
    // Find which ones the broker will not take; the others still go.
    for (const record of records) {
      try {
        await this.#producer.send([record]);
      } catch (err) {
        if (!refused(err)) throw err;
        await this.#unwritten(record, err as AssuranceError);
      }
    }
  }

  async #unwritten(record: OutboundMessage, err: AssuranceError): Promise<void> {
    const h = record.headers ?? {};
    const entry = {
      at: new Date().toISOString(),
      topic: h[DLQ_HEADERS.sourceTopic] ?? '',
      partition: h[DLQ_HEADERS.sourcePartition] ?? '',
      offset: h[DLQ_HEADERS.sourceOffset] ?? '',
      errorClass: h[DLQ_HEADERS.errorClass] ?? '',
      refusedBecause: clip(err.message, 300),
    };
    this.#logger.error(
      entry,
      'the broker refused a dead letter; its coordinates are kept in Redis, moving on',
    );
    this.#onUnwritten(entry.errorClass);
    await this.#recorder.recordUnwrittenDeadLetter(entry);
  }
}

function refused(err: unknown): boolean {
  return err instanceof AssuranceError && err.code === 'kafka_rejected';
}
