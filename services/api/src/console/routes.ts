import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EngineHealth } from '@assurance/kafka';
import { compareTiers, type Policy } from '@assurance/policy';
import {
  CompromiseSignalEvent,
  SEVERITIES,
  SIGNAL_KINDS,
  TIERS,
  type TierRequirement,
} from '@assurance/schemas';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AssuranceReader } from '../assurance-reader.ts';
import { findGrant } from '../auth.ts';
import { type ExplainDeps, explainIdentity } from '../explain.ts';
import { ApiProblem } from '../problem.ts';
import { checkSignalTenant, publishSignal, type SignalRouteDeps } from '../routes/signals.ts';
import type { AssuranceResponse, SignalsResponse } from '../schemas.ts';
import type { Scope, TokenGrant } from '../tokens.ts';
import type { ConsoleActivity, TimelineEntry } from './activity.ts';
import { overviewView, timelineView } from './activity-views.ts';
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
const JS = readFileSync(new URL('./console.js', import.meta.url), 'utf8');
/** Live streams one session may hold open (a page each), and all sessions together. */
const STREAMS_PER_SESSION = 8;
const STREAMS_MAX = 500;
/** A comment line this often keeps proxies from closing an idle stream, and notices a closed session. */
const STREAM_PING_MS = 15_000;

export interface ConsoleDeps {
  readonly tokens: readonly TokenGrant[];
  readonly reader: AssuranceReader;
  readonly explain: ExplainDeps;
  /** Candidate policies (SHADOW_POLICIES): shown beside the live answer to tokens with policy:read. */
  readonly shadowPolicies?: ReadonlyMap<string, Policy>;
  /** Where raised and cleared signals go (as POST /v1/signals sends them). */
  readonly signals: Pick<SignalRouteDeps, 'producer' | 'topic' | 'produceTimeoutMs'>;
  readonly sessions?: SessionStore;
  /** Recent decisions and dead letters read from Kafka (activity.ts): timelines and the overview. */
  readonly activity?: ConsoleActivity;
  /** The API's own measure of the engine (lag, stalls), shown on the overview. */
  readonly engineHealth: () => EngineHealth;
  /** How often an open stream sends a comment line and checks its session (15 s). */
  readonly streamPingMs?: number;
}

function page(title: string, body: Html, session?: ConsoleSession): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · otp-assurance console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<header>
  <a class="brand" href="/console/identities">otp-assurance</a>
  ${
    session
      ? html`<nav aria-label="Console"><a href="/console/identities">Identities</a> <a href="/console/overview">Overview</a></nav>
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

/** Whether a timeline entry is one the token may see: its tenant is one of the token's, if bound. */
const mayShow = (grant: TokenGrant, e: TimelineEntry) =>
  grant.tenants === null || (e.tenantId !== null && grant.tenants.has(e.tenantId));

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

/** A list as words that never break inside (`passkey_device_bound` stays whole). */
const chips = (items: readonly string[]): Html | string =>
  items.length === 0 ? 'none' : html`${items.map((i) => html`<span class="chip">${i}</span> `)}`;

function requirementCard(tier: string, r: TierRequirement): Html {
  const excluded = r.excludedAuthenticators;
  return html`<section class="card outcome-${r.outcome}" aria-labelledby="tier-${tier}">
  <h3 id="tier-${tier}">${tier} <span class="outcome">${r.outcome.replace('_', ' ')}</span></h3>
  ${r.holdUntil ? html`<p>Held until ${r.holdUntil}</p>` : ''}
  <dl>
    <dt>Acceptable</dt><dd>${chips(r.acceptableAuthenticators)}</dd>
    <dt>Recovery</dt><dd>${chips(r.recovery.allowed)}</dd>
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

/** What each shadow policy would require of this identity now, tier by tier against the live answer. */
async function shadowView(
  deps: ConsoleDeps,
  id: string,
  grant: TokenGrant,
  live: AssuranceResponse,
): Promise<Html | string> {
  const shadows = [...(deps.shadowPolicies ?? new Map<string, Policy>())];
  if (shadows.length === 0) return '';
  const rows = await Promise.all(
    shadows.map(async ([name, policy]) => {
      const answer = await deps.reader.read(id, grant, policy);
      return html`<tr><th scope="row">${name} <span class="meta">${policy.version}</span></th>${compareTiers(
        live.tiers,
        answer.tiers,
      ).map(
        (t) =>
          html`<td class="dir-${t.direction}">${t.from === t.to ? t.to.replace('_', ' ') : `${t.from.replace('_', ' ')} → ${t.to.replace('_', ' ')}`}<br><span class="meta">${t.direction.replace('_', ' ')}</span></td>`,
      )}</tr>`;
    }),
  );
  return html`<h2>Shadow policies</h2>
<table><caption class="sr-only">Shadow policies</caption>
<thead><tr><th scope="col">Policy</th>${TIERS.map((t) => html`<th scope="col">${t}</th>`)}</tr></thead>
<tbody>${rows}</tbody></table>`;
}

/** The raise form, and a clear button per SOC signal, for the scopes the session has. */
function signalForms(
  id: string,
  explained: SignalsResponse | undefined,
  s: ConsoleSession,
): { raise: Html | string; clear: Html | string } {
  // One clear per SOC signal (a SIM swap on an identity is kept as two records: one clear lifts both).
  const seen = new Set<string>();
  const socSignals = (explained?.signals ?? []).filter((x) => {
    const key = `${x.attributes.signalId}|${x.attributes.kind}`;
    if (!x.attributes.signalId || !x.attributes.kind || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return {
    raise: s.grant.scopes.has('signals:write')
      ? html`<h2>Raise a signal</h2>
<form method="post" action="/console/signals" class="raise">
  <input type="hidden" name="csrf" value="${s.csrf}">
  <input type="hidden" name="op" value="raise">
  <input type="hidden" name="identity" value="${id}">
  <label for="kind">Kind</label>
  <select id="kind" name="kind">${SIGNAL_KINDS.map((k) => html`<option value="${k}">${k.replaceAll('_', ' ')}</option>`)}</select>
  <label for="severity">Severity</label>
  <select id="severity" name="severity">${SEVERITIES.map((k) => html`<option value="${k}"${k === 'high' ? html` selected` : ''}>${k}</option>`)}</select>
  <label for="reference">Reference (ticket, case)</label>
  <input id="reference" name="reference" maxlength="500">
  <label class="confirm"><input type="checkbox" name="confirm" value="yes" required> I confirm: raise this signal on ${id}, as ${s.grant.name}</label>
  <button type="submit">Raise</button>
</form>`
      : '',
    clear:
      s.grant.scopes.has('signals:clear') && socSignals.length > 0
        ? html`<h2>Clear a signal</h2>${socSignals.map(
            (x) => html`<form method="post" action="/console/signals" class="clear">
  <input type="hidden" name="csrf" value="${s.csrf}">
  <input type="hidden" name="op" value="clear">
  <input type="hidden" name="identity" value="${id}">
  <input type="hidden" name="signalId" value="${x.attributes.signalId}">
  <input type="hidden" name="kind" value="${x.attributes.kind}">
  <label class="confirm"><input type="checkbox" name="confirm" value="yes" required> I confirm: clear ${x.attributes.kind} (${x.attributes.signalId}), as ${s.grant.name}</label>
  <button type="submit">Clear</button>
</form>`,
          )}`
        : '',
  };
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

/**
 * Mounts the console in a fastify context of its own: its form and cookie parsing apply to its
 * routes only (the API's routes keep answering 415 to a form body).
 */
export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  void app.register(async (scoped) => {
    await scoped.register(cookie);
    await scoped.register(formbody);
    consoleRoutes(scoped, deps);
  });
}

function consoleRoutes(app: FastifyInstance, deps: ConsoleDeps): void {
  const sessions = deps.sessions ?? new SessionStore();

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
  const notAllowed = (reply: FastifyReply, s: ConsoleSession, why: string) =>
    send(reply, 403, page('Not allowed', html`<p role="alert">${why}</p>`, s));
  /**
   * The session of a page that shows decisions, or undefined once the reply is sent: to sign-in
   * without a session, 403 without decisions:read.
   */
  const readerOf = (request: FastifyRequest, reply: FastifyReply): ConsoleSession | undefined => {
    const s = sessionOf(request);
    if (!s) void reply.redirect('/console/login', 303);
    else if (!need(s, 'decisions:read')) void notAllowed(reply, s, 'This token has no decisions:read scope.');
    else return s;
    return undefined;
  };

  app.get('/console/assets/console.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(CSS),
  );

  app.get('/console/assets/console.js', async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(JS),
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

  registerConsoleSignals(app, deps, sessions);
  registerConsoleStreams(app, deps, sessions);

  app.get('/console/overview', async (request, reply) => {
    const s = readerOf(request, reply);
    if (!s) return reply;
    // Its counts cover every tenant: a token bound to some sees only its tenants' identities.
    if (s.grant.tenants !== null)
      return notAllowed(
        reply,
        s,
        "The overview counts every tenant's decisions; this token is bound to tenants.",
      );
    return send(reply, 200, page('Overview', overviewView(deps.activity, deps.engineHealth()), s));
  });

  app.get('/console/identities', async (request, reply) => {
    const s = readerOf(request, reply);
    if (!s) return reply;
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
      const shadows = need(s, 'policy:read') ? await shadowView(deps, id, s.grant, answer) : '';
      const done = String((request.query as Record<string, unknown>).done ?? '');
      const notice =
        done === 'raise' || done === 'clear'
          ? html`<p class="notice" role="status">The ${done} was acknowledged by Kafka; this page updates when the engine has decided it.</p>`
          : '';
      // The audit holds who did what: shown with the scope that shows signals.
      const entries = (deps.activity?.feed?.view.timeline(id) ?? []).filter((e) => mayShow(s.grant, e));
      const timeline = explained ? timelineView(deps.activity, entries) : '';
      // The stream starts after the newest decision this page's timeline shows: one made while the
      // page loads is not missed.
      const shown = entries[0]?.sequence ?? 0;
      const forms = signalForms(id, explained, s);
      // The part a decision changes: the page's script replaces it when the stream says so.
      const live = html`<p id="live-status" class="meta" role="status" aria-live="polite"></p>
<div id="live" data-events="/console/identities/events?id=${encodeURIComponent(id)}&amp;after=${shown}">
${identityView(answer, explained)}${shadows}${forms.clear}${timeline}
</div>`;
      return send(reply, 200, page(id, html`${search}${notice}${live}${forms.raise}`, s));
    } catch (err) {
      if (err instanceof ApiProblem && err.status === 403)
        return send(reply, 403, page('Not allowed', html`${search}<p role="alert">${err.message}</p>`, s));
      throw err;
    }
  });
}

/** What a raise or clear form sends. */
const SignalForm = z.object({
  csrf: z.string(),
  op: z.enum(['raise', 'clear']),
  identity: z.string().min(1).max(200),
  kind: z.enum(SIGNAL_KINDS),
  severity: z.enum(SEVERITIES).optional(),
  signalId: z.string().max(200).optional(),
  reference: z.string().max(500).optional(),
  confirm: z.literal('yes', { error: 'the confirmation box is required' }),
});

/**
 * Raising and clearing from the console: the same contract, producer and rules as POST /v1/signals
 * (the analyst is the token's name; a clear needs signals:clear; a token bound to tenants acts only
 * on its tenants' identities), after the session's CSRF token and the origin are checked.
 */
function registerConsoleSignals(app: FastifyInstance, deps: ConsoleDeps, sessions: SessionStore): void {
  app.post('/console/signals', async (request, reply) => {
    const s = sessions.get(request.cookies?.[COOKIE]);
    if (!s) return reply.redirect('/console/login', 303);
    const refuse = (status: number, text: string) =>
      reply
        .code(status)
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          page('Refused', html`<p role="alert">${text}</p><p><a href="/console/identities">Back</a></p>`, s),
        );
    const form = SignalForm.safeParse(request.body);
    if (!form.success) return refuse(400, form.error.issues[0]?.message ?? 'invalid form');
    if (form.data.csrf !== s.csrf || !sameOrigin(request))
      return refuse(403, 'This form did not come from the console.');
    const f = form.data;
    if (!s.grant.scopes.has('signals:write')) return refuse(403, 'This token has no signals:write scope.');
    if (f.op === 'clear' && !s.grant.scopes.has('signals:clear'))
      return refuse(403, 'Clearing needs the scope signals:clear.');
    const subject = { type: 'identity' as const, value: f.identity };
    if (s.grant.tenants !== null) {
      try {
        await checkSignalTenant(deps, s.grant, { subject });
      } catch (err) {
        if (err instanceof ApiProblem) return refuse(err.status, err.message);
        throw err;
      }
    }
    const base = {
      eventId: `api.${s.grant.name}.console-${randomUUID()}`,
      occurredAt: new Date().toISOString(),
      source: 'assurance-console',
      subject,
      raisedBy: s.grant.name,
      kind: f.kind,
      ...(f.reference ? { reference: f.reference } : {}),
    };
    const event = CompromiseSignalEvent.parse(
      f.op === 'raise'
        ? { ...base, op: 'raise', signalId: `console-${randomUUID()}`, severity: f.severity ?? 'high' }
        : { ...base, op: 'clear', signalId: f.signalId },
    );
    try {
      await publishSignal(deps.signals, event);
    } catch {
      return refuse(503, 'Kafka did not acknowledge the signal; try again.');
    }
    request.log.info({ op: event.op, signalId: event.signalId, token: s.grant.name }, 'console signal');
    return reply.redirect(`/console/identities?id=${encodeURIComponent(f.identity)}&done=${f.op}`, 303);
  });
}

/**
 * Server-sent events for an identity page: an event named `decision` (its data the sequence, and
 * nothing else) each time the audit feed sees a new decision for the identity. The page fetches
 * itself again on each; what it shows is what the session's scopes allow, as on any load.
 */
function registerConsoleStreams(app: FastifyInstance, deps: ConsoleDeps, sessions: SessionStore): void {
  const open = new Map<string, number>();
  let total = 0;
  /** Each open stream's close: a stopping API ends them, or its server would wait on them forever. */
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of [...streams]) close();
  });
  app.get('/console/identities/events', async (request, reply) => {
    const s = sessions.get(request.cookies?.[COOKIE]);
    if (!s) return reply.code(401).send();
    if (!s.grant.scopes.has('decisions:read')) return reply.code(403).send();
    const id = String((request.query as Record<string, unknown>).id ?? '').trim();
    if (!id || id.length > 200) return reply.code(400).send();
    const feed = deps.activity?.feed;
    // 204 tells EventSource not to reconnect: there is nothing to follow on this process.
    if (!feed) return reply.code(204).send();
    if ((open.get(s.id) ?? 0) >= STREAMS_PER_SESSION || total >= STREAMS_MAX) return reply.code(429).send();
    open.set(s.id, (open.get(s.id) ?? 0) + 1);
    total++;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Proxies that buffer (nginx) would hold the events back.
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    const visible = (e: TimelineEntry) => mayShow(s.grant, e);
    const send = (e: TimelineEntry) =>
      res.write(`id: ${e.sequence}\nevent: decision\ndata: ${e.sequence}\n\n`);
    const unfollow = feed.view.follow(id, (e) => {
      if (visible(e)) send(e);
    });
    // What the page shows (or, reconnecting, the last event it got): anything newer is sent at once.
    const after = Math.max(
      Number((request.query as Record<string, unknown>).after) || 0,
      Number(request.headers['last-event-id']) || 0,
    );
    const newest = feed.view.timeline(id).find(visible);
    if (newest && newest.sequence > after) send(newest);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      streams.delete(close);
      clearInterval(ping);
      unfollow();
      total--;
      const left = (open.get(s.id) ?? 1) - 1;
      if (left > 0) open.set(s.id, left);
      else open.delete(s.id);
      res.end();
    };
    const ping = setInterval(() => {
      // A session signed out or expired ends its streams.
      if (!sessions.alive(s)) close();
      else res.write(': ping\n\n');
    }, deps.streamPingMs ?? STREAM_PING_MS);
    streams.add(close);
    request.raw.on('close', close);
    res.on('error', close);
  });
}
