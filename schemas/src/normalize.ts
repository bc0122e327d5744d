import { z } from 'zod';
import type { ChannelType, SubjectType } from './vocabulary.ts';

/**
 * Pure normalizers behind the zod field schemas. They return a result instead of throwing so that
 * schemas can turn a failure into a zod issue, and so that the engine can normalize a Kafka key with
 * exactly the rules that normalized the value.
 */

/** Outcome of a normalizer: the canonical value, or a message fit for a DLQ header. */
export type Normalized = { ok: true; value: string } | { ok: false; message: string; path?: string };

const ok = (value: string): Normalized => ({ ok: true, value });
const fail = (message: string): Normalized => ({ ok: false, message });

/** Longest raw phone input accepted: E.164's 15 digits leave room for generous formatting. */
export const PHONE_INPUT_MAX = 40;
/** RFC 5321 path limit; longer addresses cannot be delivered to anyway. */
export const EMAIL_MAX = 254;
/** Opaque identifiers (ids, device ids, sync accounts) are bounded so keys and hashes stay small. */
export const ID_MAX = 200;

const PHONE_ALLOWED = /^[0-9+ ().-]*$/;
const PHONE_SEPARATORS = /[ ().-]/g;

/**
 * Normalizes a phone number to E.164 (`+` then 8..15 digits, no leading zero).
 * Accepts spaces, dashes, dots and parentheses as separators, and `00` as the international prefix.
 * A number without `+` or `00` is rejected: inferring a country would bind signals to the wrong
 * subscriber, which is worse than dead-lettering the event.
 */
export function normalizePhone(raw: string): Normalized {
  const trimmed = raw.trim();
  if (trimmed.length === 0) return fail('phone number is empty');
  if (trimmed.length > PHONE_INPUT_MAX) return fail(`phone number longer than ${PHONE_INPUT_MAX} characters`);
  if (!PHONE_ALLOWED.test(trimmed)) {
    return fail('phone number may contain only digits, spaces, dashes, dots, parentheses and a leading +');
  }
  const compact = trimmed.replace(PHONE_SEPARATORS, '');
  let digits: string;
  if (compact.startsWith('+')) digits = compact.slice(1);
  else if (compact.startsWith('00')) digits = compact.slice(2);
  else {
    return fail('phone number must be international (start with + or 00); the country is never inferred');
  }
  if (digits.includes('+')) return fail('a + may only lead the phone number');
  if (digits.startsWith('0')) return fail('country code cannot start with 0');
  if (digits.length < 8 || digits.length > 15) {
    return fail(`E.164 allows 8 to 15 digits after +, got ${digits.length}`);
  }
  return ok(`+${digits}`);
}

/** Trims and lower-cases an email address, then checks it against zod's (conservative) email pattern. */
export function normalizeEmail(raw: string): Normalized {
  const value = raw.trim().toLowerCase();
  if (value.length === 0) return fail('email address is empty');
  if (value.length > EMAIL_MAX) return fail(`email address longer than ${EMAIL_MAX} characters`);
  if (!z.regexes.email.test(value)) return fail('invalid email address');
  return ok(value);
}

/** Trims an opaque identifier (device id, sync account, credential or token reference). */
export function normalizeOpaqueId(raw: string, what = 'identifier'): Normalized {
  const value = raw.trim();
  if (value.length === 0) return fail(`${what} is empty`);
  if (value.length > ID_MAX) return fail(`${what} longer than ${ID_MAX} characters`);
  return ok(value);
}

/** Normalizes a channel value according to its type (docs/contract.md, normalization). */
export function normalizeChannelValue(type: ChannelType, raw: string): Normalized {
  switch (type) {
    case 'phone':
      return normalizePhone(raw);
    case 'email':
      return normalizeEmail(raw);
    case 'device':
      return normalizeOpaqueId(raw, 'device id');
    case 'sync_account':
      return normalizeOpaqueId(raw, 'sync account');
  }
}

/**
 * Normalizes a compromise-signal subject value. Identity ids are opaque Kafka keys and kept exactly
 * as sent (trimming them would silently route to a different identity); channels follow
 * {@link normalizeChannelValue}; credential and token references are trimmed and must name their
 * identity: `owner` (the subject's `identityId`), or the value read as `<identityId>/<reference>`
 * with exactly one `/`. Only credentials and tokens have an owner.
 */
export function normalizeSubjectValue(type: SubjectType, raw: string, owner?: string): Normalized {
  if (owner !== undefined && type !== 'credential' && type !== 'token') {
    return {
      ok: false,
      message: 'identityId is only allowed on credential and token subjects',
      path: 'identityId',
    };
  }
  switch (type) {
    case 'identity':
      if (raw.length === 0) return fail('identity id is empty');
      if (raw.length > ID_MAX) return fail(`identity id longer than ${ID_MAX} characters`);
      return ok(raw);
    case 'phone':
    case 'email':
    case 'device':
      return normalizeChannelValue(type, raw);
    case 'credential':
    case 'token':
      return normalizeOwnedReference(type, raw, owner);
  }
}

/**
 * A credential or token signal must reach its identity: nothing else ties a leaked credential to
 * the identity whose requirements it must tighten, and a signal that reaches nobody would be a
 * silent "no signal". Splitting `org/alice/key-1` at a guess could send it to the wrong identity,
 * so a value with more than one `/` needs `identityId`.
 */
function normalizeOwnedReference(
  type: 'credential' | 'token',
  raw: string,
  owner: string | undefined,
): Normalized {
  const r = normalizeOpaqueId(raw, `${type} reference`);
  if (!r.ok || owner !== undefined) return r;
  const slash = r.value.indexOf('/');
  if (slash <= 0 || slash === r.value.length - 1) {
    return fail(
      `${type} subject must name its identity: identityId, or a value reading "<identityId>/<${type} id>"`,
    );
  }
  if (slash !== r.value.lastIndexOf('/')) {
    return fail(
      `${type} value "<identityId>/<${type} id>" has more than one "/", so its identity is ambiguous: send identityId`,
    );
  }
  return r;
}

/** Earliest timestamp the contract accepts: anything older is a producer bug (epoch 0, unset clock). */
export const MIN_TIMESTAMP = new Date('2000-01-01T00:00:00Z');
/** Latest absolute timestamp (for expiries, which legitimately lie in the future). */
export const MAX_TIMESTAMP = new Date('2100-01-01T00:00:00Z');
/** How far ahead of our clock an event time may be: producer clock skew, not time travel. */
export const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Parses an RFC 3339 date-time that carries an offset (`Z`, `+hh:mm`, `-hh:mm`; `T`/`Z` in either case)
 * and returns it as UTC ISO 8601 with milliseconds (`2025-01-01T10:00:00.000Z`). Fractions beyond
 * milliseconds are truncated, as JavaScript dates cannot hold them. Leap seconds (`:60`) are refused
 * for the same reason. `min` and `max` are inclusive bounds; `maxReason` replaces the message for a
 * value past `max`.
 */
export function normalizeTimestamp(
  raw: string,
  bounds: { min: Date; max: Date; maxReason?: string },
): Normalized {
  const m = RFC3339.exec(raw.toUpperCase());
  if (!m) return fail('expected an RFC 3339 date-time with offset, e.g. 2025-01-01T10:00:00Z');
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month))
    return fail('invalid calendar date');
  if (hour > 23 || minute > 59 || second > 59) return fail('invalid time of day');
  const fraction = Number((m[7] ?? '.0').slice(0, 4).padEnd(4, '0').slice(1));
  const zone = m[8] ?? 'Z';
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return fail('invalid UTC offset');
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const epoch = Date.UTC(year, month - 1, day, hour, minute, second, fraction) - offsetMinutes * 60_000;
  if (epoch < bounds.min.getTime()) return fail(`timestamp before ${bounds.min.toISOString()}`);
  if (epoch > bounds.max.getTime()) {
    return fail(bounds.maxReason ?? `timestamp after ${bounds.max.toISOString()}`);
  }
  return ok(new Date(epoch).toISOString());
}
