import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiProblem } from './problem.ts';
import type { Scope, TokenGrant } from './tokens.ts';
import { tokenDigest } from './tokens.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route requires; routes without one are public (health, metrics, the document). */
    scope?: Scope;
  }
  interface FastifyRequest {
    /** The caller, once its bearer token was accepted. */
    caller: TokenGrant | null;
  }
}

const REALM = 'assurance';

/**
 * Finds the grant for a presented token. The presented token is hashed to a fixed length and
 * compared with every configured digest without stopping at a match, so neither the token's
 * length nor its position in the list shows in the response time.
 */
export function findGrant(grants: readonly TokenGrant[], presented: string): TokenGrant | undefined {
  const digest = tokenDigest(presented);
  let found: TokenGrant | undefined;
  for (const grant of grants) {
    if (timingSafeEqual(grant.digest, digest) && found === undefined) found = grant;
  }
  return found;
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header ?? '');
  return m?.[1];
}

/**
 * A caller bound to tenants may see an identity only when its stored tenant is one of them. An
 * identity with no state yet reveals nothing (it gets the policy baseline) and is allowed; one
 * whose state names no tenant, or another, is 403: its requirements are another tenant's business.
 */
export function checkTenant(
  caller: TokenGrant | null,
  record: { readonly tenantId: string | null } | null,
): void {
  if (caller?.tenants == null || record === null) return;
  if (record.tenantId !== null && caller.tenants.has(record.tenantId)) return;
  throw new ApiProblem('forbidden', 'this identity is not in a tenant the token is bound to', {
    extensions: { tenants: [...caller.tenants] },
  });
}

/**
 * Checks the caller against the route's scope: 401 without a valid token, 403 with a valid token
 * that lacks the scope. Both carry a `WWW-Authenticate` challenge (RFC 6750 §3).
 */
export function authorize(grants: readonly TokenGrant[], request: FastifyRequest, scope: Scope): TokenGrant {
  const token = bearerToken(request.headers.authorization);
  if (token === undefined) {
    throw new ApiProblem('unauthorized', 'send Authorization: Bearer <token>', {
      headers: { 'www-authenticate': `Bearer realm="${REALM}", scope="${scope}"` },
    });
  }
  const grant = findGrant(grants, token);
  if (!grant) {
    throw new ApiProblem('unauthorized', 'the bearer token is not valid', {
      headers: { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_token"` },
    });
  }
  if (!grant.scopes.has(scope)) {
    throw new ApiProblem('forbidden', `this route requires the scope ${scope}`, {
      headers: {
        'www-authenticate': `Bearer realm="${REALM}", error="insufficient_scope", scope="${scope}"`,
      },
      extensions: { requiredScope: scope },
    });
  }
  return grant;
}

/**
 * Authenticates before the body is read (onRequest), so an anonymous caller cannot make us parse
 * anything. Routes declare their scope in `config.scope`.
 */
export function installAuth(app: FastifyInstance, grants: readonly TokenGrant[]): void {
  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (request) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    request.caller = authorize(grants, request, scope);
  });
}
