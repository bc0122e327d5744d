import { z } from 'zod';
import { contractNow } from './clock.ts';
import { COUNTRY_CODES } from './country-codes.ts';
import {
  EMAIL_MAX,
  ID_MAX,
  MAX_FUTURE_SKEW_MS,
  MAX_TIMESTAMP,
  MIN_TIMESTAMP,
  type Normalized,
  normalizeEmail,
  normalizePhone,
  normalizeTimestamp,
} from './normalize.ts';

/**
 * Field schemas shared by the event schemas. Each validates AND normalizes, so that every consumer
 * sees one canonical spelling of a phone, an address or an instant (dedupe, hashing and key checks
 * depend on it). The raw-length bounds here are loose outer limits; the normalizers give the precise
 * messages.
 */

/** Wraps a {@link Normalized}-returning function as a string → string zod transform. */
function normalizedString(maxRaw: number, normalize: (raw: string) => Normalized) {
  return z
    .string()
    .max(maxRaw)
    .transform((raw, ctx) => {
      const result = normalize(raw);
      if (result.ok) return result.value;
      ctx.addIssue({ code: 'custom', message: result.message });
      return z.NEVER;
    });
}

/** A phone number, normalized to E.164 (`+4915112345678`). */
export const PhoneNumber = normalizedString(64, normalizePhone);

/** An email address, trimmed and lower-cased. */
export const EmailAddress = normalizedString(EMAIL_MAX + 64, normalizeEmail);

/**
 * An event-time instant (`occurredAt`, `swappedAt`): RFC 3339 with offset, normalized to UTC ISO.
 * Rejected before 2000-01-01 and more than 24h ahead of {@link contractNow}.
 */
export const Timestamp = normalizedString(64, (raw) =>
  normalizeTimestamp(raw, {
    min: MIN_TIMESTAMP,
    max: new Date(contractNow().getTime() + MAX_FUTURE_SKEW_MS),
    maxReason: 'timestamp more than 24h in the future',
  }),
);

/** A future-facing instant (`expiresAt`): RFC 3339 with offset, UTC ISO, between 2000 and 2100. */
export const ExpiryTimestamp = normalizedString(64, (raw) =>
  normalizeTimestamp(raw, { min: MIN_TIMESTAMP, max: MAX_TIMESTAMP }),
);

/** ISO 3166-1 alpha-2 country code, upper-cased (see {@link COUNTRY_CODES}). */
export const CountryCode = z
  .string()
  .length(2)
  .toUpperCase()
  .refine((code) => COUNTRY_CODES.has(code), { message: 'expected an ISO 3166-1 alpha-2 country code' });

/** An IPv4 or IPv6 address (IPv6 lower-cased; no zone id, no CIDR). */
export const IpAddress = z
  .string()
  .max(45)
  .toLowerCase()
  .refine((ip) => z.regexes.ipv4.test(ip) || z.regexes.ipv6.test(ip), {
    message: 'expected an IPv4 or IPv6 address',
  });

/** Identity id: opaque, exact (it is the Kafka key, so it is never trimmed or re-cased). */
export const IdentityId = z.string().min(1).max(ID_MAX);

/** Opaque producer-chosen id (`eventId`, `signalId`): exact, 1..200 characters. */
export const OpaqueId = z.string().min(1).max(ID_MAX);

/** Device id: trimmed, 1..200 characters; the same rule as a `device` channel value. */
export const DeviceId = z.string().trim().min(1).max(ID_MAX);

/** An array of enum values, deduplicated in first-seen order (sets, sent as arrays). */
export function enumSet<T extends z.ZodEnum>(item: T, max: number) {
  return z
    .array(item)
    .max(max)
    .transform((values) => [...new Set(values)]);
}
