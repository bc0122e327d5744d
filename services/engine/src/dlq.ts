import type { AssuranceError } from '@assurance/core';
import type { InboundMessage, OutboundMessage } from '@assurance/kafka';
import { DLQ_HEADERS } from '@assurance/schemas';

/** Header values must stay small and printable; the reason is for people, the class for machines. */
function clip(s: string, max = 1000): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/**
 * The original key and bytes, untouched, with the reason in headers (docs/dead-letters.md).
 * Original headers are kept so a replay tool can re-send the message as it was.
 */
export function deadLetter(dlqTopic: string, msg: InboundMessage, error: AssuranceError): OutboundMessage {
  return {
    topic: dlqTopic,
    key: msg.key,
    value: msg.value ?? Buffer.alloc(0),
    headers: {
      ...msg.headers,
      [DLQ_HEADERS.errorClass]: error.code,
      [DLQ_HEADERS.errorMessage]: clip(error.message),
      [DLQ_HEADERS.sourceTopic]: msg.topic,
      [DLQ_HEADERS.sourcePartition]: String(msg.partition),
      [DLQ_HEADERS.sourceOffset]: msg.offset,
      [DLQ_HEADERS.sourceTimestamp]: new Date(msg.timestampMs).toISOString(),
    },
  };
}
