import { z } from 'zod';

/**
 * The closed vocabulary of the v1 contract (docs/contract.md, vocabulary).
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

/**
 * Authenticators whose every use happens on one binding and whose secret never leaves it: a code
 * sent to one phone or mailbox, a push to one device's registration, a key that cannot be exported.
 * Only these can be excluded on one binding and still accepted on another (`acceptableOn`). A TOTP
 * seed or a synced passkey can be copied and used from anywhere, and a code's origin cannot be
 * told: an exclusion of one copy excludes them all.
 */
export const BINDING_SCOPED: readonly Authenticator[] = [
  'sms_otp',
  'voice_otp',
  'email_otp',
  'email_link',
  'push',
  'push_number_match',
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

/*
 * Event vocabularies of the v1 input topics (docs/contract.md, input events).
 * Closed on purpose: a value outside these lists is a contract violation and goes to the DLQ,
 * instead of being guessed at by the policy. Adding a symbol is a BACKWARD-compatible change only for
 * readers that already know it, so new symbols ship in the consumer before any producer sends them.
 */

export const LOGIN_OUTCOMES = ['success', 'failure'] as const;
export const LoginOutcome = z.enum(LOGIN_OUTCOMES);
export type LoginOutcome = z.infer<typeof LoginOutcome>;

export const DEVICE_CHANGES = ['enrolled', 'removed', 'trust_changed', 'compromised', 'lost'] as const;
export const DeviceChange = z.enum(DEVICE_CHANGES);
export type DeviceChange = z.infer<typeof DeviceChange>;

export const SIM_CHANGE_TYPES = ['sim_change', 'port_out', 'esim_transfer', 'number_recycled'] as const;
export const SimChangeType = z.enum(SIM_CHANGE_TYPES);
export type SimChangeType = z.infer<typeof SimChangeType>;

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
export const MailboxChange = z.enum(MAILBOX_CHANGES);
export type MailboxChange = z.infer<typeof MailboxChange>;

export const BINDING_OPS = ['bound', 'unbound'] as const;
export const BindingOp = z.enum(BINDING_OPS);
export type BindingOp = z.infer<typeof BindingOp>;

/** Channel types through which a sync account (platform keychain) can itself be recovered. */
export const RECOVERY_CHANNEL_TYPES = ['phone', 'email'] as const;
export const RecoveryChannelType = z.enum(RECOVERY_CHANNEL_TYPES);
export type RecoveryChannelType = z.infer<typeof RecoveryChannelType>;

export const SIGNAL_OPS = ['raise', 'clear'] as const;
export const SignalOp = z.enum(SIGNAL_OPS);
export type SignalOp = z.infer<typeof SignalOp>;

/** What a SOC analyst says happened; the policy maps each kind to signal codes. */
export const SIGNAL_KINDS = [
  'account_takeover',
  'sim_swap',
  'mailbox_compromise',
  'device_compromise',
  'credential_leak',
  'token_theft',
  'suspicious_activity',
] as const;
export const SignalKind = z.enum(SIGNAL_KINDS);
export type SignalKind = z.infer<typeof SignalKind>;

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export const Severity = z.enum(SEVERITIES);
export type Severity = z.infer<typeof Severity>;
