import { z } from 'zod';
import { OpaqueId, Timestamp } from './fields.ts';

/**
 * The envelope every input event carries (docs/contract.md, the envelope). Its fields come first in every input
 * schema, so `eventId` dedupes across topics and the DLQ can always name the event.
 */
export const ENVELOPE_SHAPE = {
  /** Dedupe key: the engine processes an `eventId` once per identity. */
  eventId: OpaqueId,
  /** When it happened at the source; RFC 3339 with offset, normalized to UTC. Bounded by {@link Timestamp}. */
  occurredAt: Timestamp,
  /** Producing system, e.g. `okta`, `carrier-feed`, `soc-console`. */
  source: z.string().min(1).max(100),
  /** Tenant, for multi-tenant deployments. */
  tenantId: z.string().min(1).max(200).optional(),
} as const;

/** The envelope alone, for code that only needs the common fields (e.g. DLQ routing, dedupe). */
export const Envelope = z.object(ENVELOPE_SHAPE).strict();
/** Normalized envelope. */
export type Envelope = z.output<typeof Envelope>;
