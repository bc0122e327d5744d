import { z } from 'zod';
import { ENVELOPE_SHAPE } from '../envelope.ts';
import { CountryCode, DeviceId, IdentityId, IpAddress } from '../fields.ts';
import { Authenticator, LoginOutcome } from '../vocabulary.ts';

/**
 * `identity.login.v1`, keyed by `identityId`: one authentication attempt. Failures feed the fatigue
 * rule (repeated failed push or OTP); successes on a new device or from a new place feed anomalies.
 */
export const LoginEvent = z
  .object({
    ...ENVELOPE_SHAPE,
    identityId: IdentityId,
    outcome: LoginOutcome,
    /** The authenticator that was used (or attempted). */
    authenticator: Authenticator,
    ip: IpAddress.optional(),
    country: CountryCode.optional(),
    /** Autonomous system number of `ip` (32-bit, RFC 6793). */
    asn: z.number().int().min(0).max(4_294_967_295).optional(),
    deviceId: DeviceId.optional(),
    userAgent: z.string().max(512).optional(),
  })
  .strict();

/** A normalized login event. */
export type LoginEvent = z.output<typeof LoginEvent>;
