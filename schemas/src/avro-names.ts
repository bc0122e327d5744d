import type { z } from 'zod';
import {
  AuditReason,
  AuthenticatorExclusion,
  BindingRef,
  CompactTier,
  Decision,
  DecisionV2,
  RecoveryExclusion,
  TierRequirement,
  Trigger,
} from './decision.ts';
import { Channel, ChannelUses, RecoveryChannel } from './events/channel-binding.ts';
import { Subject } from './events/compromise-signal.ts';
import { ActiveSignal, SignalScope } from './state.ts';
import {
  Authenticator,
  BindingOp,
  ChannelType,
  DeviceChange,
  LoginOutcome,
  MailboxChange,
  Outcome,
  RecoveryChannelType,
  RecoveryMethod,
  RiskLevel,
  Severity,
  SignalCode,
  SignalKind,
  SignalOp,
  SimChangeType,
  SubjectType,
  Tier,
} from './vocabulary.ts';

/**
 * Avro names of shared zod schemas. Naming them once keeps the same vocabulary enum or record under
 * the same full name (`dev.assurance.v1.Authenticator`) in every subject, so consumers in other
 * languages generate one class for it. Unlisted enums and records are named after their field.
 * Renaming an entry is a breaking change for Avro readers that resolve by name.
 */
export const AVRO_NAMES: ReadonlyMap<z.core.$ZodType, string> = new Map<z.core.$ZodType, string>([
  [Authenticator, 'Authenticator'],
  [RecoveryMethod, 'RecoveryMethod'],
  [ChannelType, 'ChannelType'],
  [SubjectType, 'SubjectType'],
  [Tier, 'Tier'],
  [Outcome, 'Outcome'],
  [RiskLevel, 'RiskLevel'],
  [SignalCode, 'SignalCode'],
  [SignalScope, 'SignalScope'],
  [LoginOutcome, 'LoginOutcome'],
  [DeviceChange, 'DeviceChange'],
  [SimChangeType, 'SimChangeType'],
  [MailboxChange, 'MailboxChange'],
  [BindingOp, 'BindingOp'],
  [RecoveryChannelType, 'RecoveryChannelType'],
  [SignalOp, 'SignalOp'],
  [SignalKind, 'SignalKind'],
  [Severity, 'Severity'],
  [Channel, 'Channel'],
  [RecoveryChannel, 'RecoveryChannel'],
  [ChannelUses, 'ChannelUses'],
  [Subject, 'Subject'],
  [ActiveSignal, 'ActiveSignal'],
  [BindingRef, 'BindingRef'],
  [AuthenticatorExclusion, 'AuthenticatorExclusion'],
  [RecoveryExclusion, 'RecoveryExclusion'],
  [TierRequirement, 'TierRequirement'],
  [Trigger, 'Trigger'],
  [AuditReason, 'AuditReason'],
  [Decision, 'Decision'],
  [DecisionV2, 'DecisionV2'],
  [CompactTier, 'CompactTier'],
]);
