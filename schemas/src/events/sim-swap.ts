import { z } from 'zod';
import { ENVELOPE_SHAPE } from '../envelope.ts';
import { PhoneNumber, Timestamp } from '../fields.ts';
import { SimChangeType } from '../vocabulary.ts';

/**
 * `identity.sim-swap.v1`, keyed by the phone number in E.164: the carrier says the number now
 * reaches a different SIM. It reaches every identity bound to that phone (docs/policy-behaviours.md, behaviour 10).
 */
export const SimSwapEvent = z
  .object({
    ...ENVELOPE_SHAPE,
    /** E.164 after normalization; also the Kafka key. */
    phoneNumber: PhoneNumber,
    /** When the swap took effect; the 14-day window of the default policy starts here. */
    swappedAt: Timestamp,
    changeType: SimChangeType,
    carrier: z.string().min(1).max(100).optional(),
  })
  .strict();

/** A normalized SIM-swap event. */
export type SimSwapEvent = z.output<typeof SimSwapEvent>;
