/**
 * The one place this package reaches into the v1 contract (`@assurance/schemas`).
 * Everything else imports vocabulary and types from here, so the import path is a one-line change.
 */
import { SignalScope } from '@assurance/schemas';

export type {
  ActiveSignal,
  Authenticator,
  Binding,
  BindingRef,
  ChannelType,
  IdentityState,
  Outcome,
  RecoveryMethod,
  RiskLevel,
  SignalCode,
  Tier,
  TierRequirement,
} from '@assurance/schemas';
/** The contract's zod schema for one tier of a decision (tests check every evaluation against it). */
export {
  AUTHENTICATORS,
  BINDING_SCOPED,
  CHANNEL_TYPES,
  DEVICE_CHANGES,
  KNOWN_ACTIONS,
  MAILBOX_CHANGES,
  OUTCOMES,
  PHISHING_RESISTANT,
  RECOVERY_METHODS,
  RISK_LEVELS,
  SIGNAL_CODES,
  SIM_CHANGE_TYPES,
  TIERS,
  TierRequirement as TierRequirementSchema,
} from '@assurance/schemas';
export type { SignalScope };

/** Scopes a signal may carry, taken from the contract's `SignalScope` enum. */
export const SIGNAL_SCOPES = SignalScope.options as [SignalScope, ...SignalScope[]];
