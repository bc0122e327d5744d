import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * Bearer tokens and their scopes, as configured in `API_TOKENS`. Two spellings are accepted:
 *
 * - compact: `name:token:scope+scope,name:token:scope` (e.g. `soc:Qm9…:signals:write`): the name and
 *   the token never contain `:`, so everything after the second `:` is the scope list;
 * - JSON: `[{"name":"soc","token":"Qm9…","scopes":["signals:write"]}]`.
 *
 * Only SHA-256 digests of the tokens are kept after parsing, so a heap dump or a log line of the
 * parsed config never shows a usable token.
 */

/**
 * `decisions:read` what an action requires and verify; `signals:read` the SOC view of an identity
 * (signals with their ids, analysts and references); `signals:write` raise compromise signals;
 * `signals:clear` clear them (a separate right: a clear relaxes); `ops:read` readiness details
 * (internal addresses and states); `ssf:stream` a Shared Signals receiver's own stream: manage it
 * and poll it (the token's name is the receiver); `policy:read` what-if answers of shadow policies.
 */
export const SCOPES = [
  'decisions:read',
  'signals:read',
  'signals:write',
  'signals:clear',
  'ops:read',
  'ssf:stream',
  'policy:read',
] as const;
export const Scope = z.enum(SCOPES);
export type Scope = z.infer<typeof Scope>;

/** Shortest token accepted: 24 characters of base64url carry 144 bits, beyond any guessing. */
export const MIN_TOKEN_LENGTH = 24;

const TokenEntry = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/i, 'token names are letters, digits, _ and -'),
  token: z
    .string()
    .min(MIN_TOKEN_LENGTH, `tokens must be at least ${MIN_TOKEN_LENGTH} characters`)
    .max(512)
    // RFC 6750 b64token without '/', '+' and '=' so the compact form stays unambiguous.
    .regex(/^[A-Za-z0-9._~-]+$/, 'tokens may contain only letters, digits and . _ ~ -'),
  scopes: z.array(Scope).min(1, 'a token needs at least one scope'),
  /**
   * The tenants the token is bound to: it reads only identities whose stored tenant is one of them,
   * and writes only signals about such identities. Absent: every tenant.
   */
  tenants: z.array(z.string().min(1).max(200)).min(1).max(100).optional(),
});

/** One configured caller: its name (for logs) and the digest of its token. */
export interface TokenGrant {
  readonly name: string;
  readonly digest: Buffer;
  readonly scopes: ReadonlySet<Scope>;
  /** null: not bound to tenants. */
  readonly tenants: ReadonlySet<string> | null;
}

/** SHA-256 of a token: fixed length, so comparisons can be constant-time whatever was presented. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function compactEntries(text: string): unknown[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0)
    .map((item) => {
      const first = item.indexOf(':');
      const second = first < 0 ? -1 : item.indexOf(':', first + 1);
      if (second < 0) return { malformed: item.slice(0, Math.max(first, 0)) || '?' };
      // `scope+scope@tenant|tenant`: the tenants after the last '@'.
      const rest = item.slice(second + 1);
      const at = rest.lastIndexOf('@');
      const scopes = at < 0 ? rest : rest.slice(0, at);
      return {
        name: item.slice(0, first),
        token: item.slice(first + 1, second),
        scopes: scopes.split('+').map((s) => s.trim()),
        ...(at < 0
          ? {}
          : {
              tenants: rest
                .slice(at + 1)
                .split('|')
                .map((t) => t.trim()),
            }),
      };
    });
}

/** `API_TOKENS` parsed and checked: at least one token, unique names, unique tokens. */
export const ApiTokens = z
  .string()
  .min(1, 'API_TOKENS is required, e.g. app:<token of 24+ chars>:decisions:read')
  .transform((text, ctx): TokenGrant[] => {
    let raw: unknown[];
    if (text.trim().startsWith('[')) {
      try {
        raw = z.array(z.unknown()).parse(JSON.parse(text));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'API_TOKENS looks like JSON but is not a JSON array' });
        return z.NEVER;
      }
    } else {
      raw = compactEntries(text);
    }
    const grants: TokenGrant[] = [];
    const names = new Set<string>();
    const digests = new Set<string>();
    raw.forEach((entry, index) => {
      if (entry && typeof entry === 'object' && 'malformed' in entry) {
        // Never echo the entry: it may hold a token.
        ctx.addIssue({ code: 'custom', message: `entry ${index + 1}: expected name:token:scope[+scope…]` });
        return;
      }
      const parsed = TokenEntry.safeParse(entry);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          ctx.addIssue({
            code: 'custom',
            message: `entry ${index + 1} ${issue.path.join('.')}: ${issue.message}`,
          });
        }
        return;
      }
      const { name, token, scopes, tenants } = parsed.data;
      const digest = tokenDigest(token);
      if (names.has(name)) ctx.addIssue({ code: 'custom', message: `duplicate token name "${name}"` });
      if (digests.has(digest.toString('hex')))
        ctx.addIssue({ code: 'custom', message: `entry ${index + 1}: the same token is configured twice` });
      names.add(name);
      digests.add(digest.toString('hex'));
      grants.push({ name, digest, scopes: new Set(scopes), tenants: tenants ? new Set(tenants) : null });
    });
    if (raw.length === 0) ctx.addIssue({ code: 'custom', message: 'API_TOKENS lists no token' });
    return grants;
  });
