import { z } from 'zod';
import { Authenticator, ChannelType, RecoveryMethod, SignalCode } from './vocabulary.ts';

/**
 * Per-identity state as the engine keeps it in Redis and hands it to the policy.
 * Channel values never appear here: `channelRef` is a keyed hash (HMAC) of the normalized value.
 */

/** Hex HMAC-SHA-256 of `<type>:<normalized value>`, truncated to 32 hex chars. */
export const ChannelRef = z.string().regex(/^[0-9a-f]{32}$/, 'expected a 32-hex-char channel hash');
export type ChannelRef = z.infer<typeof ChannelRef>;

/** What a signal is attached to: a channel, the identity itself, or a credential/token reference. */
export const SignalScope = z.enum([
  'phone',
  'email',
  'device',
  'sync_account',
  'identity',
  'credential',
  'token',
]);
export type SignalScope = z.infer<typeof SignalScope>;

export const Binding = z.object({
  channelType: ChannelType,
  channelRef: ChannelRef,
  authenticators: z.array(Authenticator).max(32),
  recovery: z.array(RecoveryMethod).max(16),
  boundAt: z.iso.datetime(),
  /** For a sync account: the channels through which the account itself can be recovered. */
  recoverableVia: z
    .array(z.object({ channelType: ChannelType, channelRef: ChannelRef }))
    .max(16)
    .default([]),
});
export type Binding = z.infer<typeof Binding>;

export const ActiveSignal = z.object({
  code: SignalCode,
  scope: SignalScope,
  /** Hashed channel ref, the hashed credential/token ref, or null for identity-wide signals. */
  ref: z.string().max(128).nullable(),
  since: z.iso.datetime(),
  expiresAt: z.iso.datetime().nullable(),
  sourceEventIds: z.array(z.string().max(200)).max(32),
  /** Bounded detail the policy may use (e.g. `changeType`, `severity`, `kind`). */
  attributes: z.record(z.string().max(64), z.string().max(200)).default({}),
});
export type ActiveSignal = z.infer<typeof ActiveSignal>;

export const IdentityState = z.object({
  identityId: z.string().min(1).max(200),
  tenantId: z.string().max(200).nullable(),
  /** False when no binding event was ever seen for this identity: enrollment is then unknown. */
  bindingsKnown: z.boolean(),
  bindings: z.array(Binding).max(256),
  signals: z.array(ActiveSignal).max(512),
});
export type IdentityState = z.infer<typeof IdentityState>;
