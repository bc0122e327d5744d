import { z } from 'zod';
import { DEVICE_CHANGES, MAILBOX_CHANGES, SIM_CHANGE_TYPES } from './contract.ts';
import { AuthenticatorSet, Count, Duration, setOf } from './schema-parts.ts';

/**
 * The `signals` section: how the engine turns raw events into signals (lifetimes, windows,
 * thresholds). The evaluator never reads it; the engine does, typed as {@link SignalSettings}.
 * Durations are written `14d` in YAML and come out as milliseconds in fields ending in `Ms`.
 */

const SimChangeName = z.enum(SIM_CHANGE_TYPES, {
  error: (issue) =>
    issue.input === undefined ? 'is required' : `unknown SIM change type ${JSON.stringify(issue.input)}`,
});
const DeviceChangeName = z.enum(DEVICE_CHANGES, {
  error: (issue) =>
    issue.input === undefined ? 'is required' : `unknown device change ${JSON.stringify(issue.input)}`,
});

/**
 * When a mailbox change counts as tampering. `external_or_unknown`: only when the event says the
 * target is external or does not say (fail closed); `external_only`: only when it says external.
 */
export const MAILBOX_CHANGE_MODES = ['always', 'external_or_unknown', 'external_only', 'ignore'] as const;
const MailboxMode = z.enum(MAILBOX_CHANGE_MODES, {
  error: (issue) =>
    issue.input === undefined
      ? 'is required'
      : `unknown mode ${JSON.stringify(issue.input)}: expected always, external_or_unknown, external_only or ignore`,
});

/** Every mailbox change type needs an explicit decision (an exhaustive record). */
const MailboxChanges = z.strictObject(
  Object.fromEntries(MAILBOX_CHANGES.map((change) => [change, MailboxMode])) as Record<
    (typeof MAILBOX_CHANGES)[number],
    typeof MailboxMode
  >,
);

export const SignalSettingsSchema = z
  .strictObject({
    sim_swap: z.strictObject({
      /** Measured from the carrier's `swappedAt`, not from when we heard of it. */
      window: Duration,
      changeTypes: setOf(SimChangeName, SIM_CHANGE_TYPES),
    }),
    mailbox_tampered: z.strictObject({ ttl: Duration, changes: MailboxChanges }),
    device_new: z.strictObject({ ttl: Duration }),
    device_compromised: z.strictObject({ ttl: Duration, changes: setOf(DeviceChangeName, DEVICE_CHANGES) }),
    mfa_fatigue: z.strictObject({
      threshold: Count,
      window: Duration,
      ttl: Duration,
      /** Failures of these authenticators count towards the threshold. */
      authenticators: AuthenticatorSet,
    }),
    login_anomaly: z.strictObject({
      ttl: Duration,
      /** How long a country, ASN or device stays "seen" for an identity. */
      memory: Duration,
      /** Only a new country/ASN together with a new device raises the signal. */
      requireNewDevice: z.boolean(),
    }),
    repeated_failures: z.strictObject({ threshold: Count, window: Duration, ttl: Duration }),
    channel_compromised: z.strictObject({ defaultTtl: Duration }),
    credential_compromised: z.strictObject({ defaultTtl: Duration }),
    /** `null`: holds until the SOC clears it. */
    takeover_confirmed: z.strictObject({ ttl: Duration.nullable() }),
    signal_unreadable: z.strictObject({ ttl: Duration }),
  })
  .transform((s) => ({
    sim_swap: { windowMs: s.sim_swap.window, changeTypes: s.sim_swap.changeTypes },
    mailbox_tampered: { ttlMs: s.mailbox_tampered.ttl, changes: s.mailbox_tampered.changes },
    device_new: { ttlMs: s.device_new.ttl },
    device_compromised: { ttlMs: s.device_compromised.ttl, changes: s.device_compromised.changes },
    mfa_fatigue: {
      threshold: s.mfa_fatigue.threshold,
      windowMs: s.mfa_fatigue.window,
      ttlMs: s.mfa_fatigue.ttl,
      authenticators: s.mfa_fatigue.authenticators,
    },
    login_anomaly: {
      ttlMs: s.login_anomaly.ttl,
      memoryMs: s.login_anomaly.memory,
      requireNewDevice: s.login_anomaly.requireNewDevice,
    },
    repeated_failures: {
      threshold: s.repeated_failures.threshold,
      windowMs: s.repeated_failures.window,
      ttlMs: s.repeated_failures.ttl,
    },
    channel_compromised: { defaultTtlMs: s.channel_compromised.defaultTtl },
    credential_compromised: { defaultTtlMs: s.credential_compromised.defaultTtl },
    takeover_confirmed: { ttlMs: s.takeover_confirmed.ttl },
    signal_unreadable: { ttlMs: s.signal_unreadable.ttl },
  }));

/** Lifetimes, windows and thresholds the engine uses to create signals (all durations in ms). */
export type SignalSettings = z.output<typeof SignalSettingsSchema>;
/** When a mailbox change counts as tampering. */
export type MailboxChangeMode = (typeof MAILBOX_CHANGE_MODES)[number];
