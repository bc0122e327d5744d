/**
 * The one place this package reaches into the v1 contract (`@assurance/schemas`).
 * Everything else imports vocabulary and types from here, so the import path is a one-line change.
 */
import { SignalScope } from '../../../schemas/src/state.ts';

export type { TierRequirement } from '../../../schemas/src/decision.ts';
/** The contract's zod schema for one tier of a decision (tests check every evaluation against it). */
export { TierRequirement as TierRequirementSchema } from '../../../schemas/src/decision.ts';
export type { ActiveSignal, Binding, IdentityState } from '../../../schemas/src/state.ts';
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
} from '../../../schemas/src/vocabulary.ts';
export type { SignalScope };

/** Scopes a signal may carry, taken from the contract's `SignalScope` enum. */
export const SIGNAL_SCOPES = SignalScope.options as [SignalScope, ...SignalScope[]];
