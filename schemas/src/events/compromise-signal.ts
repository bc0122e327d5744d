import { z } from 'zod';
import { ENVELOPE_SHAPE } from '../envelope.ts';
import { ExpiryTimestamp, IdentityId, OpaqueId } from '../fields.ts';
import { EMAIL_MAX, normalizeSubjectValue } from '../normalize.ts';
import { Severity, SignalKind, SubjectType } from '../vocabulary.ts';

/**
 * What a SOC signal is about: an identity, a channel (phone, email, device) or a credential/token
 * reference. The value is normalized per type (see `normalizeSubjectValue`), so the Kafka key
 * `<type>:<value>` is canonical.
 *
 * A credential or token belongs to an identity, which its signal must reach: `identityId` names it.
 * Without `identityId`, the value may read `<identityId>/<reference>` with exactly one `/` (the
 * original form); a value with more than one `/` and no `identityId` is ambiguous and refused.
 */
export const Subject = z
  .object({
    type: SubjectType,
    value: z.string().max(EMAIL_MAX + 64),
    identityId: IdentityId.optional().describe('The owning identity (credential and token subjects only)'),
  })
  .strict()
  .transform((subject, ctx) => {
    const result = normalizeSubjectValue(subject.type, subject.value, subject.identityId);
    if (result.ok) {
      return subject.identityId === undefined
        ? { type: subject.type, value: result.value }
        : { type: subject.type, value: result.value, identityId: subject.identityId };
    }
    ctx.addIssue({ code: 'custom', message: result.message, path: [(!result.ok && result.path) || 'value'] });
    return z.NEVER;
  });
/** A normalized signal subject. */
export type Subject = z.output<typeof Subject>;

/**
 * The identity a credential or token subject belongs to, and its reference: `identityId` when
 * given, else the original `<identityId>/<reference>` form (exactly one `/`, checked on input).
 */
export function credentialOwner(subject: Subject): { identityId: string; reference: string } | undefined {
  if (subject.type !== 'credential' && subject.type !== 'token') return undefined;
  if (subject.identityId !== undefined) return { identityId: subject.identityId, reference: subject.value };
  const slash = subject.value.indexOf('/');
  if (slash <= 0 || slash !== subject.value.lastIndexOf('/')) return undefined;
  return { identityId: subject.value.slice(0, slash), reference: subject.value.slice(slash + 1) };
}

/** Who raised or cleared the signal (analyst or automation id). */
const Actor = z.string().min(1).max(200);
/** Ticket, case or intel reference; free text for humans, never parsed. */
const Reference = z.string().min(1).max(500);

/** `op: 'raise'`: a SOC signal goes live until cleared or until `expiresAt`. */
export const CompromiseSignalRaise = z
  .object({
    ...ENVELOPE_SHAPE,
    signalId: OpaqueId,
    op: z.literal('raise'),
    subject: Subject,
    kind: SignalKind,
    severity: Severity,
    /** Absent: live until cleared. Must lie after `occurredAt`. */
    expiresAt: ExpiryTimestamp.optional(),
    reference: Reference.optional(),
    raisedBy: Actor,
  })
  .strict()
  .superRefine((event, ctx) => {
    if (event.expiresAt !== undefined && event.expiresAt <= event.occurredAt) {
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'expiresAt must be after occurredAt' });
    }
  });

/**
 * `op: 'clear'`: withdraws the signal `signalId` on `subject`. Only what identifies the signal and who
 * cleared it is required (`raisedBy` names the clearing actor); `kind` and `reference` are optional
 * context for the audit trail. Severity and expiry mean nothing on a clear and are refused.
 */
export const CompromiseSignalClear = z
  .object({
    ...ENVELOPE_SHAPE,
    signalId: OpaqueId,
    op: z.literal('clear'),
    subject: Subject,
    kind: SignalKind.optional(),
    reference: Reference.optional(),
    raisedBy: Actor,
  })
  .strict();

/**
 * `identity.compromise-signal.v1`, keyed by `<subject.type>:<subject.value>` (e.g.
 * `phone:+4915112345678`, `identity:user-42`): a SOC raise or clear, discriminated on `op`.
 */
export const CompromiseSignalEvent = z.discriminatedUnion('op', [
  CompromiseSignalRaise,
  CompromiseSignalClear,
]);

/** A normalized compromise-signal event (raise or clear). */
export type CompromiseSignalEvent = z.output<typeof CompromiseSignalEvent>;
