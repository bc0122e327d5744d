import { z } from 'zod';

/**
 * The closed vocabulary of the v1 contract (BRIEF.md, "Vocabulary").
 * Every other schema, the policy and the Avro schemas draw their enums from here.
 */

export const AUTHENTICATORS = [
  'password',
  'sms_otp',
  'voice_otp',
  'email_otp',
  'email_link',
  'totp',
  'push',
  'push_number_match',
  'passkey_synced',
  'passkey_device_bound',
  'security_key',
  'smart_card',
] as const;
export const Authenticator = z.enum(AUTHENTICATORS);
export type Authenticator = z.infer<typeof Authenticator>;

/** Phishing-resistant authenticators (NIST SP 800-63B verifier-impersonation resistance). */
export const PHISHING_RESISTANT: readonly Authenticator[] = [
  'passkey_synced',
  'passkey_device_bound',
  'security_key',
  'smart_card',
];

export const RECOVERY_METHODS = [
  'email_link',
  'sms_code',
  'backup_codes',
  'helpdesk_kba',
  'helpdesk_verified_callback',
  'id_document_liveness',
  'in_person',
] as const;
export const RecoveryMethod = z.enum(RECOVERY_METHODS);
export type RecoveryMethod = z.infer<typeof RecoveryMethod>;

export const CHANNEL_TYPES = ['phone', 'email', 'device', 'sync_account'] as const;
export const ChannelType = z.enum(CHANNEL_TYPES);
export type ChannelType = z.infer<typeof ChannelType>;

/** Subjects a SOC signal may name: an identity, a channel, or a credential/token. */
export const SUBJECT_TYPES = ['identity', 'phone', 'email', 'device', 'credential', 'token'] as const;
export const SubjectType = z.enum(SUBJECT_TYPES);
export type SubjectType = z.infer<typeof SubjectType>;

export const TIERS = ['low', 'medium', 'high', 'critical'] as const;
export const Tier = z.enum(TIERS);
export type Tier = z.infer<typeof Tier>;

export const OUTCOMES = ['allow', 'step_up', 'hold', 'deny'] as const;
export const Outcome = z.enum(OUTCOMES);
export type Outcome = z.infer<typeof Outcome>;

export const RISK_LEVELS = ['low', 'elevated', 'high', 'critical'] as const;
export const RiskLevel = z.enum(RISK_LEVELS);
export type RiskLevel = z.infer<typeof RiskLevel>;

/** Actions the default policy knows. Policies may add more; this list is the documented minimum. */
export const KNOWN_ACTIONS = [
  'payout.change',
  'bank_transfer.create',
  'password.reset',
  'mfa.reset',
  'admin.role_change',
  'api_token.issue',
  'secret.export',
  'delegated_access.approve',
  'account.recovery.privileged',
] as const;

/** Signal codes the engine keeps per identity. */
export const SIGNAL_CODES = [
  'sim_swap',
  'mailbox_tampered',
  'device_new',
  'device_compromised',
  'mfa_fatigue',
  'login_anomaly',
  'repeated_failures',
  'channel_compromised',
  'credential_compromised',
  'takeover_confirmed',
  'signal_unreadable',
] as const;
export const SignalCode = z.enum(SIGNAL_CODES);
export type SignalCode = z.infer<typeof SignalCode>;
