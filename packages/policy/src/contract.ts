/**
 * The one place this package reaches into the v1 contract (`@assurance/schemas`).
 * Everything else imports vocabulary and types from here, so the import path is a one-line change.
 */

export type { TierRequirement } from '../../../schemas/src/decision.ts';
export type { ActiveSignal, Binding, IdentityState, SignalScope } from '../../../schemas/src/state.ts';
export type {
  Authenticator,
  ChannelType,
  Outcome,
  RecoveryMethod,
  RiskLevel,
  SignalCode,
  Tier,
} from '../../../schemas/src/vocabulary.ts';
export {
  AUTHENTICATORS,
  CHANNEL_TYPES,
  KNOWN_ACTIONS,
  OUTCOMES,
  PHISHING_RESISTANT,
  RECOVERY_METHODS,
  RISK_LEVELS,
  SIGNAL_CODES,
  TIERS,
} from '../../../schemas/src/vocabulary.ts';

/** Scopes a signal may carry (mirrors `SignalScope` in `schemas/src/state.ts`). */
export const SIGNAL_SCOPES = [
  'phone',
  'email',
  'device',
  'sync_account',
  'identity',
  'credential',
  'token',
] as const;

/*
 * Event sub-vocabularies from BRIEF.md "Topics (v1)". They belong in the contract's event schemas;
 * until those exist they are spelled here, and only the `signals` section of the policy uses them.
 */
/** `identity.sim-swap.v1` changeType values. */
export const SIM_CHANGE_TYPES = ['sim_change', 'port_out', 'esim_transfer', 'number_recycled'] as const;
/** `identity.mailbox-change.v1` change values. */
export const MAILBOX_CHANGES = [
  'forwarding_rule_added',
  'inbox_rule_added',
  'recovery_changed',
  'password_changed',
  'mfa_changed',
  'delegate_added',
  'oauth_grant_added',
  'suspicious_login',
] as const;
/** `identity.device.v1` change values. */
export const DEVICE_CHANGES = ['enrolled', 'removed', 'trust_changed', 'compromised', 'lost'] as const;
