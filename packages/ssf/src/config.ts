import { readFileSync } from 'node:fs';
import { envDuration } from '@assurance/core';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * The transmitters this receiver accepts Security Event Tokens from (`SSF_TRANSMITTERS_FILE`, YAML
 * or JSON), validated at start: a transmitter is trusted only as far as this file says.
 */

const Name = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,39}$/,
    'a transmitter name is 1 to 40 of a-z, 0-9 and "-", starting with a letter or digit',
  );
const Algorithm = z.enum(
  ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
  {
    error: (i) =>
      `${JSON.stringify(i.input)} is not an accepted algorithm: asymmetric JWS algorithms only (never none or HS*)`,
  },
);
/** The token a transmitter presents when it pushes; literal, or read from an environment variable. */
const Secret = z.union([
  z
    .string()
    .regex(/^[A-Za-z0-9._~+/=-]{24,512}$/, 'a push token is 24 to 512 characters of [A-Za-z0-9._~+/=-]'),
  z.strictObject({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/) }),
]);

export const TransmitterSchema = z.strictObject({
  name: Name,
  /** Its issuer: every SET's `iss`. */
  issuer: z.url(),
  /** Where its signing keys are (a JWKS). */
  jwksUri: z.url(),
  /** Accepted JWS algorithms; RS256 is what the SSF interoperability profile requires. */
  algorithms: z.array(Algorithm).min(1).default(['RS256']),
  /** Our audience as this transmitter addresses us; the file's `audience` when unset. */
  audience: z.string().min(1).optional(),
  /** Push delivery (RFC 8935): the bearer token it presents. Absent: it may not push. */
  pushToken: Secret.optional(),
  /** Poll delivery (RFC 8936): its poll endpoint and the bearer token it takes. */
  poll: z
    .strictObject({
      endpoint: z.url(),
      token: Secret,
      maxEvents: z.number().int().min(1).max(1000).default(100),
      interval: envDuration.default(2000),
    })
    .optional(),
  /** Its stream-management API (the `assurance ssf` commands): the bearer token it takes. */
  managementToken: Secret.optional(),
  /** `iss_sub` subjects of these issuers name our identities (`sub` is the identity id); default: its issuer. */
  identityIssuers: z.array(z.url()).optional(),
  /** Whether an `opaque` subject's `id` is our identity id. */
  opaqueIsIdentity: z.boolean().default(true),
  /** Members of a complex subject we must resolve, or refuse the SET. */
  criticalSubjectMembers: z.array(z.string()).default([]),
  /** Whether its events may clear signals (an account enabled again, a risk back to low). */
  mayClear: z.boolean().default(false),
  /** How old a SET may be when it arrives (a paused stream delivers held events late). */
  maxAge: envDuration.default(7 * 86_400_000),
  /**
   * While its stream is not known to be healthy (paused, disabled, status unreadable, verification
   * overdue or failed), tiers from this one up fail closed in the API's answers: what it would have
   * told us is unknown. `never`: its absence changes nothing. Unset: the policy's
   * `sharedSignals.whenUnavailable`, else `high`.
   */
  whenUnavailable: z.enum(['low', 'medium', 'high', 'critical', 'never']).optional(),
  /** Ask it for a verification event every `every`; unhealthy when none came back within `maxAge`. */
  verify: z.strictObject({ every: envDuration, maxAge: envDuration }).optional(),
});
export type TransmitterInput = z.input<typeof TransmitterSchema>;

export const TransmittersFileSchema = z
  .strictObject({
    /** Our audience: what transmitters put in `aud`. */
    audience: z.string().min(1),
    transmitters: z.array(TransmitterSchema).min(1),
  })
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    for (const [i, t] of f.transmitters.entries()) {
      if (t.verify && t.verify.maxAge <= t.verify.every)
        ctx.addIssue({
          code: 'custom',
          path: ['transmitters', i, 'verify', 'maxAge'],
          message: 'verify.maxAge must be longer than verify.every, or the stream is never healthy',
        });
      if (t.verify && !t.managementToken)
        ctx.addIssue({
          code: 'custom',
          path: ['transmitters', i, 'verify'],
          message: 'verification is asked through the stream-management API: set managementToken',
        });
      if (seen.has(t.name))
        ctx.addIssue({
          code: 'custom',
          path: ['transmitters', i, 'name'],
          message: `"${t.name}" is named twice`,
        });
      seen.add(t.name);
    }
  });

/** A transmitter as the receiver uses it: defaults filled in, its push token resolved. */
export interface Transmitter {
  readonly name: string;
  readonly issuer: string;
  readonly jwksUri: URL;
  readonly algorithms: readonly string[];
  readonly audience: string;
  readonly pushToken: string | undefined;
  readonly poll: { endpoint: URL; token: string; maxEvents: number; intervalMs: number } | undefined;
  readonly managementToken: string | undefined;
  readonly identityIssuers: readonly string[];
  readonly opaqueIsIdentity: boolean;
  readonly criticalSubjectMembers: readonly string[];
  readonly mayClear: boolean;
  readonly maxAgeMs: number;
  /** Undefined: the policy's `sharedSignals.whenUnavailable` (`high` when it says nothing). */
  readonly whenUnavailable: 'low' | 'medium' | 'high' | 'critical' | 'never' | undefined;
  readonly verify: { everyMs: number; maxAgeMs: number } | undefined;
}

export class TransmittersFileError extends Error {
  override readonly name = 'TransmittersFileError';
}

/** Parses a transmitters file's text; every problem in one error, each with its path. */
export function parseTransmitters(text: string, env: NodeJS.ProcessEnv = process.env): Transmitter[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new TransmittersFileError(`not YAML or JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = TransmittersFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new TransmittersFileError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('\n'),
    );
  const problems: string[] = [];
  const out = parsed.data.transmitters.map((t, i) => {
    const secret = (value: z.output<typeof Secret> | undefined, at: string): string | undefined => {
      if (value === undefined || typeof value === 'string') return value;
      const v = env[value.env];
      if (v === undefined || v.length < 24)
        problems.push(`transmitters.${i}.${at}: ${value.env} must be set to at least 24 characters`);
      return v;
    };
    const pushToken = secret(t.pushToken, 'pushToken');
    const pollToken = t.poll === undefined ? undefined : secret(t.poll.token, 'poll.token');
    return {
      name: t.name,
      issuer: t.issuer,
      jwksUri: new URL(t.jwksUri),
      algorithms: t.algorithms,
      audience: t.audience ?? parsed.data.audience,
      pushToken,
      poll:
        t.poll === undefined
          ? undefined
          : {
              endpoint: new URL(t.poll.endpoint),
              token: pollToken ?? '',
              maxEvents: t.poll.maxEvents,
              intervalMs: t.poll.interval,
            },
      managementToken: secret(t.managementToken, 'managementToken'),
      identityIssuers: t.identityIssuers ?? [t.issuer],
      opaqueIsIdentity: t.opaqueIsIdentity,
      criticalSubjectMembers: t.criticalSubjectMembers,
      mayClear: t.mayClear,
      maxAgeMs: t.maxAge,
      whenUnavailable: t.whenUnavailable,
      verify: t.verify === undefined ? undefined : { everyMs: t.verify.every, maxAgeMs: t.verify.maxAge },
    };
  });
  if (problems.length > 0) throw new TransmittersFileError(problems.join('\n'));
  return out;
}

export function loadTransmitters(file: string, env: NodeJS.ProcessEnv = process.env): Transmitter[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TransmittersFileError(
      `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  try {
    return parseTransmitters(text, env);
  } catch (err) {
    if (err instanceof TransmittersFileError) throw new TransmittersFileError(`${file}:\n${err.message}`);
    throw err;
  }
}
