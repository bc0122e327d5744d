import { readFileSync } from 'node:fs';
import type { TierRequirement } from '@assurance/schemas';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AssuranceReader } from '../assurance-reader.ts';
import { findGrant } from '../auth.ts';
import { type ExplainDeps, explainIdentity } from '../explain.ts';
import { ApiProblem } from '../problem.ts';
import type { AssuranceResponse, SignalsResponse } from '../schemas.ts';
import type { Scope, TokenGrant } from '../tokens.ts';
import { type Html, html } from './html.ts';
import { type ConsoleSession, SessionStore } from './sessions.ts';

/**
 * The SOC console, served by the API under /console: server-rendered pages and plain forms (no
 * script is needed; nothing is loaded from outside), behind the API's own tokens and scopes.
 *
 * - Sign-in takes a token in a form and starts a session. The cookie is HttpOnly, SameSite=Strict
 *   and Secure over HTTPS, and holds a random id, never the token.
 * - Every form posts the session's CSRF token and must come from this origin.
 * - Pages show only what the session's scopes allow: requirements with `decisions:read`; signals,
 *   their rules and the bindings with `signals:read`.
 */
const COOKIE = 'assurance_console';
const CSS = readFileSync(new URL('./console.css', import.meta.url), 'utf8');

export interface ConsoleDeps {
  readonly tokens: readonly TokenGrant[];
  readonly reader: AssuranceReader;
  readonly explain: ExplainDeps;
  readonly sessions?: SessionStore;
}

function page(title: string, body: Html, session?: ConsoleSession): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · otp-assurance console</title>
<link rel="stylesheet" href="/console/assets/console.css">
</head>
<body>
<header>
  <a class="brand" href="/console/identities">otp-assurance</a>
  ${
    session
      ? html`<nav aria-label="Console"><a href="/console/identities">Identities</a></nav>
  <form method="post" action="/console/logout" class="signout">
    <input type="hidden" name="csrf" value="${session.csrf}">
    <span>Signed in as <strong>${session.grant.name}</strong></span>
    <button type="submit">Sign out</button>
  </form>`
      : ''
  }
</header>
<main id="main">
${body}
</main>
</body>
</html>`.text;
}

const scopes = (s: ConsoleSession) => s.grant.scopes;

/** A POST from another origin (a forged form) is refused whatever it carries. */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin ?? request.headers.referer;
  if (!origin) return false;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function requirementCard(tier: string, r: TierRequirement): Html {
  const excluded = r.excludedAuthenticators;
  return html`<section class="card outcome-${r.outcome}" aria-labelledby="tier-${tier}">
  <h3 id="tier-${tier}">${tier} <span class="outcome">${r.outcome.replace('_', ' ')}</span></h3>
  ${r.holdUntil ? html`<p>Held until ${r.holdUntil}</p>` : ''}
  <dl>
    <dt>Acceptable</dt><dd>${r.acceptableAuthenticators.length ? r.acceptableAuthenticators.join(', ') : 'none'}</dd>
    <dt>Recovery</dt><dd>${r.recovery.allowed.length ? r.recovery.allowed.join(', ') : 'none'}</dd>
    ${r.requirePhishingResistant ? html`<dt>Phishing-resistant</dt><dd>required</dd>` : ''}
    ${r.requireLiveness ? html`<dt>Liveness</dt><dd>required</dd>` : ''}
    ${r.requireVerifiedCallback ? html`<dt>Verified callback</dt><dd>required</dd>` : ''}
  </dl>
  ${
    excluded.length
      ? html`<details><summary>Excluded (${excluded.length})</summary><ul>${excluded.map(
          (e) => html`<li>${e.authenticator}: ${e.reasons.join(', ')}</li>`,
        )}</ul></details>`
      : ''
  }
</section>`;
}

function identityView(a: AssuranceResponse, explained: SignalsResponse | undefined): Html {
  return html`<h2>${a.identityId}</h2>
<p class="meta">Risk <strong>${a.riskLevel}</strong> · decision ${a.sequence} · policy ${a.policyVersion} · computed ${a.computedAt}</p>
${
  a.degraded
    ? html`<p class="degraded" role="alert">Degraded: ${a.degradedReasons.join(', ')}. Every tier shown is the strictest requirement.</p>`
    : ''
}
<div class="cards">${Object.entries(a.tiers).map(([tier, r]) => requirementCard(tier, r))}</div>
${
  explained
    ? html`<h2>Signals</h2>
${
  explained.signals.length === 0
    ? html`<p>No live signals.</p>`
    : html`<table><caption class="sr-only">Live signals</caption>
<thead><tr><th scope="col">Signal</th><th scope="col">On</th><th scope="col">Since</th><th scope="col">Until</th><th scope="col">Rules</th><th scope="col">Events</th></tr></thead>
<tbody>${explained.signals.map(
        (
          s,
        ) => html`<tr><td>${s.code}</td><td>${s.channelType ?? s.scope}</td><td>${s.since}</td><td>${s.expiresAt ?? 'cleared by SOC'}</td>
<td>${s.rules.map((r) => html`<div>${r.id}: ${r.reasons.map((x) => x.admin).join(' ')}</div>`)}</td><td>${s.sourceEventIds.join(', ')}</td></tr>`,
      )}</tbody></table>`
}
<h2>Bindings</h2>
${
  explained.bindings.length === 0
    ? html`<p>${explained.bindingsKnown ? 'No bindings.' : 'No binding seen: enrollment unknown.'}</p>`
    : html`<table><caption class="sr-only">Bindings</caption>
<thead><tr><th scope="col">Channel</th><th scope="col">Ref (hashed)</th><th scope="col">Authenticators</th><th scope="col">Recovery</th><th scope="col">Since</th></tr></thead>
<tbody>${explained.bindings.map(
        (b) =>
          html`<tr><td>${b.channelType}</td><td><code>${b.channelRef.slice(0, 12)}…</code></td><td>${b.uses.authenticators.join(', ') || '—'}</td><td>${b.uses.recovery.join(', ') || '—'}</td><td>${b.boundAt}</td></tr>`,
      )}</tbody></table>`
}
<h2>Why</h2>
<ul>${explained.reasons.map((r) => html`<li><code>${r.code}</code> ${r.admin}</li>`)}</ul>`
    : html`<p class="meta">Signals and bindings need the scope signals:read.</p>`
}`;
}

export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  const sessions = deps.sessions ?? new SessionStore();
  void app.register(cookie);
  void app.register(formbody);

  const sessionOf = (request: FastifyRequest) => sessions.get(request.cookies?.[COOKIE]);
  const secure = (request: FastifyRequest) => request.protocol === 'https';
  const send = (reply: FastifyReply, status: number, body: string) =>
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header(
        'content-security-policy',
        "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      )
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'same-origin')
      .send(body);
  const need = (session: ConsoleSession, scope: Scope) => scopes(session).has(scope);

  app.get('/console/assets/console.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(CSS),
  );

  app.get('/console', async (request, reply) =>
    reply.redirect(sessionOf(request) ? '/console/identities' : '/console/login', 303),
  );

  app.get('/console/login', async (_request, reply) =>
    send(
      reply,
      200,
      page(
        'Sign in',
        html`<h1>Sign in</h1>
<form method="post" action="/console/login" class="login">
  <label for="token">API token</label>
  <input id="token" name="token" type="password" autocomplete="off" required autofocus>
  <p class="hint">A token from API_TOKENS. It is kept by the server for this session only, never in the page, the address or a log.</p>
  <button type="submit">Sign in</button>
</form>`,
      ),
    ),
  );

  app.post('/console/login', async (request, reply) => {
    if (!sameOrigin(request))
      return send(reply, 403, page('Refused', html`<p>Sign-in from another site is refused.</p>`));
    const token =
      typeof (request.body as Record<string, unknown>)?.token === 'string'
        ? (request.body as { token: string }).token
        : '';
    const grant = findGrant(deps.tokens, token);
    if (!grant)
      return send(
        reply,
        401,
        page(
          'Sign in',
          html`<h1>Sign in</h1><p class="error" role="alert">That token is not recognised.</p><p><a href="/console/login">Try again</a></p>`,
        ),
      );
    const s = sessions.create(grant);
    request.log.info({ token: grant.name }, 'console sign-in');
    return reply
      .setCookie(COOKIE, s.id, {
        path: '/console',
        httpOnly: true,
        sameSite: 'strict',
        secure: secure(request),
      })
      .redirect('/console/identities', 303);
  });

  app.post('/console/logout', async (request, reply) => {
    const s = sessionOf(request);
    const csrf = (request.body as Record<string, unknown> | undefined)?.csrf;
    // A forged sign-out changes nothing, not even the cookie.
    if (s && !(sameOrigin(request) && csrf === s.csrf))
      return send(
        reply,
        403,
        page('Refused', html`<p role="alert">This form did not come from the console.</p>`),
      );
    sessions.destroy(s?.id);
    return reply.clearCookie(COOKIE, { path: '/console' }).redirect('/console/login', 303);
  });

  app.get('/console/identities', async (request, reply) => {
    const s = sessionOf(request);
    if (!s) return reply.redirect('/console/login', 303);
    if (!need(s, 'decisions:read'))
      return send(
        reply,
        403,
        page('Not allowed', html`<p role="alert">This token has no decisions:read scope.</p>`, s),
      );
    const id = String((request.query as Record<string, unknown>).id ?? '').trim();
    const search = html`<h1>Identities</h1>
<form method="get" action="/console/identities" role="search" class="search">
  <label for="id">Identity id</label>
  <input id="id" name="id" value="${id}" required maxlength="200">
  <button type="submit">Look up</button>
</form>`;
    if (!id) return send(reply, 200, page('Identities', search, s));
    try {
      const answer = await deps.reader.read(id, s.grant);
      const explained = need(s, 'signals:read')
        ? await explainIdentity(deps.explain, id, s.grant)
        : undefined;
      return send(reply, 200, page(id, html`${search}${identityView(answer, explained)}`, s));
    } catch (err) {
      if (err instanceof ApiProblem && err.status === 403)
        return send(reply, 403, page('Not allowed', html`${search}<p role="alert">${err.message}</p>`, s));
      throw err;
    }
  });
}
