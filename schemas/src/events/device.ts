import { z } from 'zod';
import { ENVELOPE_SHAPE } from '../envelope.ts';
import { DeviceId, enumSet, IdentityId } from '../fields.ts';
import { Authenticator, DeviceChange } from '../vocabulary.ts';

/**
 * `identity.device.v1`, keyed by `identityId`: a device lifecycle change. `enrolled` starts the
 * new-device window; `compromised` and `lost` exclude the authenticators that live on the device.
 */
export const DeviceEvent = z
  .object({
    ...ENVELOPE_SHAPE,
    identityId: IdentityId,
    deviceId: DeviceId,
    change: DeviceChange,
    /** Under MDM/enterprise management. */
    managed: z.boolean().optional(),
    /** Keys are held in a TPM / secure enclave. */
    hardwareBacked: z.boolean().optional(),
    /** Authenticators that live on this device (push, TOTP app, device-bound passkey...); deduplicated. */
    authenticators: enumSet(Authenticator, 12).optional(),
  })
  .strict();

/** A normalized device event. */
export type DeviceEvent = z.output<typeof DeviceEvent>;
