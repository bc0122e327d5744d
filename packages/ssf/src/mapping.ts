import { createHash } from 'node:crypto';
import type { CompromiseSignalEvent, Severity, SignalKind } from '@assurance/schemas';
import { EVENT_TYPES, type EventTypeName, eventTypeName } from './events.ts';
import type { ResolvedSubject } from './subject.ts';
import type { VerifiedSet } from './verify.ts';

/**
 * Which received event becomes which compromise signal (docs/shared-signals.md has the table).
 *
 * - A signal names its transmitter and event in its ids (`ssf.<transmitter>.…`) and `raisedBy`, so
 *   the audit trail shows where it came from, and a SET delivered twice is the same event id twice,
 *   which the engine applies once.
 * - Events that describe a state (an account disabled, a risk level) raise a signal whose id is the
 *   same for every event of that family on that subject, so a later event of the family replaces
 *   it; events that report an incident (a credential compromised) raise one signal each.
 * - An event that would relax (an account enabled again, a risk level back to low) clears only when
 *   the transmitter is trusted to clear (`mayClear`); otherwise the signal runs out its lifetime.
 */

const DAY = 86_400_000;

/** One rule of the table: the signal an event raises (or the family it clears). */
export interface MappingRule {
  readonly event: EventTypeName;
  /** Matches only when the event's `field` has one of these values (case-insensitive). */
  readonly when?: { readonly field: string; readonly in: readonly string[] };
  /** The signal raised; absent with `clears`. */
  readonly raise?: {
    readonly kind: SignalKind;
    readonly severity: Severity;
    readonly ttlMs: number;
    /** Set: one signal per subject for the family, replaced by the next event of it. */
    readonly family?: string;
  };
  /** The family whose signal this event clears (if the transmitter may clear). */
  readonly clears?: string | undefined;
}

/**
 * The default table, in order: the first rule whose event and condition match applies. An event
 * type without a rule is acknowledged and counted as ignored.
 */
export const DEFAULT_MAPPING: readonly MappingRule[] = [
  // RISC credential-compromise: a credential of the subject is in someone else's hands.
  {
    event: 'credentialCompromise',
    when: { field: 'credential_type', in: ['phone-sms', 'phone-voice'] },
    raise: { kind: 'sim_swap', severity: 'high', ttlMs: 30 * DAY },
  },
  {
    event: 'credentialCompromise',
    when: { field: 'credential_type', in: ['email'] },
    raise: { kind: 'mailbox_compromise', severity: 'high', ttlMs: 30 * DAY },
  },
  { event: 'credentialCompromise', raise: { kind: 'credential_leak', severity: 'high', ttlMs: 30 * DAY } },
  // RISC account-disabled because of hijacking: the account at the transmitter (often the mailbox
  // or SSO account) is taken over. Other reasons say nothing about a takeover.
  {
    event: 'accountDisabled',
    when: { field: 'reason', in: ['hijacking'] },
    raise: { kind: 'account_takeover', severity: 'critical', ttlMs: 30 * DAY, family: 'account-disabled' },
  },
  { event: 'accountEnabled', clears: 'account-disabled' },
  // An identifier that changed hands: codes sent to it reach someone else.
  { event: 'identifierRecycled', raise: { kind: 'sim_swap', severity: 'high', ttlMs: 30 * DAY } },
  { event: 'identifierChanged', raise: { kind: 'suspicious_activity', severity: 'medium', ttlMs: 7 * DAY } },
  // Recovery changes are the takeover's footprint.
  { event: 'recoveryActivated', raise: { kind: 'suspicious_activity', severity: 'high', ttlMs: 7 * DAY } },
  {
    event: 'recoveryInformationChanged',
    raise: { kind: 'suspicious_activity', severity: 'high', ttlMs: 7 * DAY },
  },
  {
    event: 'accountCredentialChangeRequired',
    raise: { kind: 'credential_leak', severity: 'medium', ttlMs: 14 * DAY },
  },
  { event: 'optOutInitiated', raise: { kind: 'suspicious_activity', severity: 'low', ttlMs: 7 * DAY } },
  // CAEP: an authenticator added, removed or changed recently.
  { event: 'credentialChange', raise: { kind: 'suspicious_activity', severity: 'medium', ttlMs: 3 * DAY } },
  {
    event: 'assuranceLevelChange',
    when: { field: 'change_direction', in: ['decrease'] },
    raise: { kind: 'suspicious_activity', severity: 'medium', ttlMs: 3 * DAY },
  },
  {
    event: 'deviceComplianceChange',
    when: { field: 'current_status', in: ['not-compliant'] },
    raise: { kind: 'device_compromise', severity: 'high', ttlMs: 30 * DAY, family: 'device-compliance' },
  },
  {
    event: 'deviceComplianceChange',
    when: { field: 'current_status', in: ['compliant'] },
    clears: 'device-compliance',
  },
  {
    event: 'riskLevelChange',
    when: { field: 'current_level', in: ['high'] },
    raise: { kind: 'suspicious_activity', severity: 'high', ttlMs: 7 * DAY, family: 'risk-level' },
  },
  {
    event: 'riskLevelChange',
    when: { field: 'current_level', in: ['medium'] },
    raise: { kind: 'suspicious_activity', severity: 'medium', ttlMs: 7 * DAY, family: 'risk-level' },
  },
  { event: 'riskLevelChange', when: { field: 'current_level', in: ['low'] }, clears: 'risk-level' },
];

/**
 * A policy's `sharedSignals.mapping` as the receiver's table. Throws, naming them, on event names
 * the receiver does not know: a rule that could never match would silently map nothing.
 */
export function mappingFrom(
  rules: ReadonlyArray<Omit<MappingRule, 'event'> & { readonly event: string }>,
): MappingRule[] {
  const unknown = rules.map((r) => r.event).filter((e) => !(e in EVENT_TYPES));
  if (unknown.length > 0)
    throw new Error(
      `the policy's sharedSignals.mapping names events this receiver does not know: ${[...new Set(unknown)].join(', ')} (known: ${Object.keys(EVENT_TYPES).join(', ')})`,
    );
  return rules.map((r) => ({ ...r, event: r.event as EventTypeName }));
}

/** What one received event does. */
export type Mapped =
  | { readonly kind: 'signal'; readonly event: CompromiseSignalEvent; readonly rule: MappingRule }
  | {
      readonly kind: 'ignored';
      readonly why: 'unknown_type' | 'no_rule' | 'no_subject' | 'clear_not_trusted';
    };

/** Our ids are at most 200 characters: a long `jti` or subject is hashed into them. */
function idPart(text: string, room: number): string {
  return text.length <= room
    ? text
    : `h-${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`;
}

/**
 * The compromise signal a verified SET raises or clears, if any.
 *
 * `occurredAt` is the event's own `event_timestamp` when it carries one (seconds), else the SET's
 * `iat`: held events of a paused stream arrive late, and the engine orders by this time.
 */
export function mapEvent(
  set: VerifiedSet,
  subject: ResolvedSubject | undefined,
  transmitter: { readonly name: string; readonly mayClear: boolean },
  table: readonly MappingRule[] = DEFAULT_MAPPING,
): Mapped {
  const name = eventTypeName(set.eventType);
  if (name === undefined) return { kind: 'ignored', why: 'unknown_type' };
  const rule = table.find((r) => {
    if (r.event !== name) return false;
    if (r.when === undefined) return true;
    const value = set.event[r.when.field];
    return typeof value === 'string' && r.when.in.includes(value.toLowerCase());
  });
  if (rule === undefined) return { kind: 'ignored', why: 'no_rule' };
  if (subject === undefined) return { kind: 'ignored', why: 'no_subject' };
  const stamp = set.event.event_timestamp;
  const occurredMs = typeof stamp === 'number' && Number.isFinite(stamp) ? stamp * 1000 : set.issuedAt;
  const occurredAt = new Date(occurredMs).toISOString();
  const envelope = {
    eventId: `ssf.${transmitter.name}.${idPart(set.jti, 150)}`,
    occurredAt,
    source: `ssf:${transmitter.name}`,
  };
  const raisedBy = `ssf:${transmitter.name}`;
  const subjectId = idPart(`${subject.type}:${subject.value}`, 100);
  const reference = `SET ${idPart(set.jti, 200)} (${name})`.slice(0, 500);
  if (rule.clears !== undefined) {
    if (!transmitter.mayClear) return { kind: 'ignored', why: 'clear_not_trusted' };
    return {
      kind: 'signal',
      rule,
      event: {
        ...envelope,
        op: 'clear',
        signalId: `ssf.${transmitter.name}.${rule.clears}.${subjectId}`,
        subject,
        reference,
        raisedBy,
      },
    };
  }
  const raise = rule.raise;
  if (raise === undefined) return { kind: 'ignored', why: 'no_rule' };
  return {
    kind: 'signal',
    rule,
    event: {
      ...envelope,
      op: 'raise',
      signalId:
        raise.family === undefined
          ? envelope.eventId
          : `ssf.${transmitter.name}.${raise.family}.${subjectId}`,
      subject,
      kind: raise.kind,
      severity: raise.severity,
      expiresAt: new Date(occurredMs + raise.ttlMs).toISOString(),
      reference,
      raisedBy,
    },
  };
}
