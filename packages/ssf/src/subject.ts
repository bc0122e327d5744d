/**
 * Subject identifiers of Security Event Tokens (RFC 9493, and SSF 1.0's `complex`), and what they
 * name in this product: an identity, or a channel (phone, email, device) whose signals reach every
 * identity bound to it.
 *
 * Google's RISC names the format `subject_type` where the RFC says `format`: both are read.
 */

/** Our subject: the contract's `Subject` before normalization. */
export interface ResolvedSubject {
  readonly type: 'identity' | 'phone' | 'email' | 'device';
  readonly value: string;
}

/** How a transmitter's subjects name our identities. */
export interface SubjectRules {
  /** `iss_sub` subjects whose `iss` is one of these name identity `sub`. */
  readonly identityIssuers: readonly string[];
  /** Whether an `opaque` subject's `id` is an identity id. */
  readonly opaqueIsIdentity: boolean;
  /** Members of a `complex` subject the transmitter marks critical: one we cannot resolve rejects the SET. */
  readonly criticalMembers: readonly string[];
}

export class SubjectError extends Error {
  override readonly name = 'SubjectError';
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Json, key: string): string => {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > 512)
    throw new SubjectError(`subject member "${key}" must be a non-empty string of at most 512 characters`);
  return v;
};

/** The members of an SSF complex subject, in the order their subjects are preferred. */
const COMPLEX_MEMBERS = ['user', 'device', 'session', 'application', 'tenant', 'org_unit', 'group'] as const;
/** Members that can name one of our subjects. */
const RESOLVABLE_MEMBERS = new Set(['user', 'device']);

/**
 * What `subject` names, by `rules`; undefined when it is well formed but names nothing of ours
 * (an `iss_sub` of another issuer, a `did`). Throws SubjectError when it is malformed, or when a
 * critical member of a complex subject cannot be resolved.
 */
export function resolveSubject(
  subject: unknown,
  rules: SubjectRules,
  depth = 0,
): ResolvedSubject | undefined {
  if (!isObject(subject)) throw new SubjectError('the subject must be a JSON object');
  if (depth > 2) throw new SubjectError('subjects nest at most two levels deep');
  const format = subject.format ?? subject.subject_type;
  if (format === undefined && depth === 0 && COMPLEX_MEMBERS.some((m) => m in subject))
    return resolveComplex(subject, rules, depth);
  if (typeof format !== 'string') throw new SubjectError('the subject has no "format"');
  switch (format) {
    case 'email':
      return { type: 'email', value: str(subject, 'email') };
    case 'phone_number':
      return { type: 'phone', value: str(subject, 'phone_number') };
    case 'iss_sub': {
      const iss = str(subject, 'iss');
      const sub = str(subject, 'sub');
      return rules.identityIssuers.includes(iss) ? { type: 'identity', value: sub } : undefined;
    }
    case 'opaque': {
      const id = str(subject, 'id');
      return rules.opaqueIsIdentity ? { type: 'identity', value: id } : undefined;
    }
    case 'account':
    case 'did':
    case 'uri':
      str(subject, format === 'did' ? 'url' : 'uri');
      return undefined;
    case 'aliases': {
      const ids = subject.identifiers;
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > 16)
        throw new SubjectError('an "aliases" subject needs 1 to 16 "identifiers"');
      // Every alias is checked; the first that names something of ours is the subject.
      const resolved = ids.map((id) => {
        if (isObject(id) && (id.format ?? id.subject_type) === 'aliases')
          throw new SubjectError('an alias cannot itself be "aliases"');
        return resolveSubject(id, rules, depth + 1);
      });
      return resolved.find((r) => r !== undefined);
    }
    case 'complex':
      if (depth > 0) throw new SubjectError('a "complex" subject cannot be nested');
      return resolveComplex(subject, rules, depth);
    default:
      throw new SubjectError(`unknown subject format "${format.slice(0, 64)}"`);
  }
}

function resolveComplex(subject: Json, rules: SubjectRules, depth: number): ResolvedSubject | undefined {
  const found: Partial<Record<(typeof COMPLEX_MEMBERS)[number], ResolvedSubject | undefined>> = {};
  for (const member of COMPLEX_MEMBERS) {
    if (!(member in subject)) continue;
    const value = subject[member];
    let resolved: ResolvedSubject | undefined;
    // A device member with an opaque id names a device channel by the id our device events use.
    if (member === 'device' && isObject(value) && value.format === 'opaque')
      resolved = { type: 'device', value: str(value, 'id') };
    else if (RESOLVABLE_MEMBERS.has(member)) resolved = resolveSubject(value, rules, depth + 1);
    if (resolved === undefined && rules.criticalMembers.includes(member))
      throw new SubjectError(`the critical subject member "${member}" names nothing this receiver knows`);
    found[member] = resolved;
  }
  return found.user ?? found.device;
}
