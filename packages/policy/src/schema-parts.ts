import { z } from 'zod';
import {
  AUTHENTICATORS,
  OUTCOMES,
  RECOVERY_METHODS,
  RISK_LEVELS,
  SIGNAL_CODES,
  SIGNAL_SCOPES,
  TIERS,
} from './contract.ts';
import { parseDuration } from './durations.ts';

/**
 * Building blocks shared by the policy schema and the case-file schema. Every enum names what it
 * expected, so an error reads `unknown authenticator "sms"` rather than a list of 12 options.
 */

function named<const T extends readonly [string, ...string[]]>(values: T, what: string) {
  return z.enum(values, {
    error: (issue) =>
      issue.input === undefined ? 'is required' : `unknown ${what} ${JSON.stringify(issue.input)}`,
  });
}

export const TierName = named(TIERS, 'tier');
export const OutcomeName = named(OUTCOMES, 'outcome');
export const RiskName = named(RISK_LEVELS, 'risk level');
export const AuthenticatorName = named(AUTHENTICATORS, 'authenticator');
export const RecoveryName = named(RECOVERY_METHODS, 'recovery method');
export const SignalCodeName = named(SIGNAL_CODES, 'signal code');
export const ScopeName = named(SIGNAL_SCOPES, 'signal scope');

/**
 * A set written as a YAML list: duplicates are an error (they hide typos), and the output is in
 * vocabulary order so that reordering a list changes neither behaviour nor digest.
 */
export function setOf<const T extends readonly [string, ...string[]]>(
  item: z.ZodType<T[number], unknown>,
  order: T,
) {
  return z.array(item).transform((values, ctx) => {
    const seen = new Set<string>();
    values.forEach((value, index) => {
      if (seen.has(value)) {
        ctx.issues.push({
          code: 'custom',
          path: [index],
          message: `duplicate ${JSON.stringify(value)}`,
          input: value,
        });
      }
      seen.add(value);
    });
    return order.filter((candidate) => seen.has(candidate)) as T[number][];
  });
}

export const AuthenticatorSet = setOf(AuthenticatorName, AUTHENTICATORS);
export const RecoverySet = setOf(RecoveryName, RECOVERY_METHODS);

const DURATION_HINT = 'expected a duration such as 10m, 72h or 14d';

/** A positive duration (`10m`, `72h`, `14d`) parsed into milliseconds. */
export const Duration = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : DURATION_HINT) })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) {
      ctx.issues.push({
        code: 'custom',
        message: `invalid duration ${JSON.stringify(text)}: ${DURATION_HINT}`,
        input: text,
      });
      return z.NEVER;
    }
    return ms;
  });

/** A positive whole count such as a threshold. */
export const Count = z.int({ error: 'expected a whole number' }).min(1).max(10_000);

/** Reason codes as the decision contract allows them (`schemas/src/decision.ts`). */
export const ReasonCode = z
  .string({ error: 'expected a reason code' })
  .regex(/^[a-z0-9_.]{1,80}$/, 'reason codes are 1-80 chars of a-z, 0-9, "_" and "."');

/** Reason texts: `admin` for operators (may name channel types, never values), `user` safe for end users. */
export const ReasonText = z.strictObject({
  admin: z.string().min(1).max(500),
  user: z.string().min(1).max(300),
});
