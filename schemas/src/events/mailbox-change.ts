import { z } from 'zod';
import { ENVELOPE_SHAPE } from '../envelope.ts';
import { EmailAddress } from '../fields.ts';
import { MailboxChange } from '../vocabulary.ts';

/**
 * `identity.mailbox-change.v1`, keyed by the mailbox address (lower-case): a change to an inbox that
 * may receive codes and recovery links. It reaches every identity bound to that address.
 */
export const MailboxChangeEvent = z
  .object({
    ...ENVELOPE_SHAPE,
    /** Trimmed, lower-cased address; also the Kafka key. */
    mailbox: EmailAddress,
    change: MailboxChange,
    /** The change points outside the organisation (e.g. forwarding to an external address). */
    external: z.boolean().optional(),
  })
  .strict();

/** A normalized mailbox-change event. */
export type MailboxChangeEvent = z.output<typeof MailboxChangeEvent>;
