import type { AssuranceClient, CompletedStepUp, VerifyAnswer } from '@assurance/client';
import { isAssuranceClientError } from '@assurance/client';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

/**
 * A tiny app whose payout change is guarded by the assurance client: before changing where money
 * goes, it asks whether what this session completed satisfies what `payout.change` requires of this
 * user now, and refuses with RFC 9457 problem details listing what is missing.
 */

/** The action this app guards, as the policy names it. */
export const ACTION = 'payout.change';

/** What the app knows about the caller: who they are and what step-up they completed. */
export interface Session {
  readonly userId: string;
  readonly completed: CompletedStepUp;
}

/** Finds the session of a request; undefined when there is none. */
export type SessionLookup = (request: FastifyRequest) => Session | undefined;

/**
 * DEMO ONLY: the session from headers, so the example runs with curl. `x-demo-user` is the user id,
 * `x-demo-step-up` the completed step-up as JSON, e.g. `{"authenticator":"security_key",
 * "authenticatedAt":"2026-01-01T10:00:00Z"}`. A real app takes both from its own session store.
 */
export const demoHeaderSession: SessionLookup = (request) => {
  const userId = request.headers['x-demo-user'];
  if (typeof userId !== 'string' || userId.length === 0) return undefined;
  const raw = request.headers['x-demo-step-up'];
  let completed: CompletedStepUp = {};
  if (typeof raw === 'string') {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) completed = parsed;
    } catch {
      // An unreadable step-up is no step-up.
    }
  }
  return { userId, completed };
};

function problem(reply: FastifyReply, status: number, body: Record<string, unknown>): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json; charset=utf-8')
    .send({ status, ...body });
}

/** RFC 9470 step-up challenge, so OAuth-aware front ends know which ACR and max age to ask for. */
function stepUpChallenge(verdict: VerifyAnswer): string {
  const acr = verdict.requirement.acrValues.join(' ').replaceAll('"', '');
  return [
    'Bearer error="insufficient_user_authentication"',
    'error_description="A stronger or more recent authentication is required"',
    ...(acr ? [`acr_values="${acr}"`] : []),
    `max_age=${verdict.requirement.maxAge}`,
  ].join(', ');
}

/** The app, wired to an assurance client and a way to find sessions. */
export function buildApp(options: {
  client: AssuranceClient;
  session?: SessionLookup;
  logger?: boolean;
}): FastifyInstance {
  const { client } = options;
  const session = options.session ?? demoHeaderSession;
  const app = Fastify({ logger: options.logger ?? false });

  // What the UI should ask for before offering the form (no verdict, just the requirement).
  app.get('/payouts/requirement', async (request, reply) => {
    const s = session(request);
    if (s === undefined) return problem(reply, 401, { title: 'Sign in first' });
    const r = await client.requirementFor(s.userId, ACTION);
    return { action: r.action, tier: r.tier, requirement: r.requirement, degraded: r.degraded };
  });

  app.post<{ Params: { id: string } }>('/payouts/:id/change', async (request, reply) => {
    const s = session(request);
    if (s === undefined) return problem(reply, 401, { title: 'Sign in first' });
    let verdict: VerifyAnswer;
    try {
      // Requirement and verification in one call; a degraded answer is never satisfied.
      verdict = await client.verify(s.userId, ACTION, s.completed);
    } catch (error) {
      // A configuration error (bad token, wrong URL): nothing proves the step-up, so no change.
      request.log.error(
        { code: isAssuranceClientError(error) ? error.code : 'unknown' },
        'assurance check failed',
      );
      return problem(reply, 503, { title: 'Assurance check unavailable', detail: 'Try again later.' });
    }
    if (!verdict.satisfied) {
      reply.header('www-authenticate', stepUpChallenge(verdict));
      const {
        outcome,
        acceptableAuthenticators,
        requireLiveness,
        requireVerifiedCallback,
        recovery,
        holdUntil,
      } = verdict.requirement;
      return problem(reply, 403, {
        type: 'https://example.com/problems/step-up-required',
        title:
          outcome === 'step_up' ? 'Step-up required' : `Action ${outcome === 'hold' ? 'on hold' : 'denied'}`,
        detail: `Changing a payout needs: ${verdict.missing.join(', ')}`,
        missing: verdict.missing,
        requirement: {
          outcome,
          acceptableAuthenticators,
          requireLiveness,
          requireVerifiedCallback,
          recovery: recovery.allowed,
          ...(holdUntil === undefined ? {} : { holdUntil }),
        },
        degraded: verdict.degraded,
      });
    }
    // ... change the payout destination here ...
    return { payoutId: request.params.id, status: 'changed' };
  });

  return app;
}
