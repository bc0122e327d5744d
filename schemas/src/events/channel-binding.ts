import { z } from 'zod';
import { ENVELOPE_SHAPE } from '../envelope.ts';
import { enumSet, IdentityId } from '../fields.ts';
import { EMAIL_MAX, normalizeChannelValue } from '../normalize.ts';
import { Authenticator, BindingOp, ChannelType, RecoveryChannelType, RecoveryMethod } from '../vocabulary.ts';

/** Raw bound of a channel value before normalization: the longest normalized value plus slack. */
const CHANNEL_VALUE_RAW_MAX = EMAIL_MAX + 64;

/** `{type, value}` with the value normalized for its type; `types` narrows which types are allowed. */
function normalizedChannel<T extends ChannelType>(types: z.ZodType<T>) {
  return z
    .object({ type: types, value: z.string().max(CHANNEL_VALUE_RAW_MAX) })
    .strict()
    .transform((channel: { type: T; value: string }, ctx) => {
      const result = normalizeChannelValue(channel.type, channel.value);
      if (result.ok) return { type: channel.type, value: result.value };
      ctx.addIssue({ code: 'custom', message: result.message, path: ['value'] });
      return z.NEVER;
    });
}

/**
 * A channel as sent by a producer, its value normalized per type: phone → E.164, email → trimmed
 * lower-case, device and sync account → trimmed 1..200. Normalizing here is what makes a SIM-swap
 * keyed `+4915112345678` reach an identity that bound `0049 151 1234 5678`.
 */
export const Channel = normalizedChannel(ChannelType);
/** A normalized channel. */
export type Channel = z.output<typeof Channel>;

/** A channel through which a sync account can be recovered: only phone or email. */
export const RecoveryChannel = normalizedChannel(RecoveryChannelType);
/** A normalized recovery channel. */
export type RecoveryChannel = z.output<typeof RecoveryChannel>;

/** What the identity uses the channel for. Both lists default to empty and are deduplicated. */
export const ChannelUses = z
  .object({
    authenticators: enumSet(Authenticator, 12).default([]),
    recovery: enumSet(RecoveryMethod, 7).default([]),
  })
  .strict();

/**
 * `identity.channel-binding.v1`, keyed by `identityId`: the identity binds (or unbinds) a channel and
 * says which authenticators and recovery methods go through it.
 *
 * An extension (docs/contract.md, extensions): `recoverableVia`, allowed only on `sync_account`
 * channels, lists the phones and mailboxes through which that sync account (e.g. a platform keychain)
 * can itself be recovered. It is what lets behaviour 6 (docs/policy-behaviours.md) exclude
 * `passkey_synced` when one of those channels is tampered with. Absent means "not known", not "none".
 */
export const ChannelBindingEvent = z
  .object({
    ...ENVELOPE_SHAPE,
    identityId: IdentityId,
    op: BindingOp,
    channel: Channel,
    uses: ChannelUses.default({ authenticators: [], recovery: [] }),
    recoverableVia: z.array(RecoveryChannel).max(8).optional(),
  })
  .strict()
  .superRefine((event, ctx) => {
    if (event.recoverableVia !== undefined && event.channel.type !== 'sync_account') {
      ctx.addIssue({
        code: 'custom',
        path: ['recoverableVia'],
        message: 'recoverableVia is only allowed on sync_account channels',
      });
    }
  });

/** A normalized channel-binding event. */
export type ChannelBindingEvent = z.output<typeof ChannelBindingEvent>;
