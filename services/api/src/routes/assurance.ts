import type { Policy } from '@assurance/policy';
import { verifyCompletion } from '@assurance/policy';
import type { BindingRef, Channel } from '@assurance/schemas';
import type { FastifyInstance } from 'fastify';
import type { AssuranceReader } from '../assurance-reader.ts';
import { ApiProblem } from '../problem.ts';
import { defineRoute, mount } from '../route-spec.ts';
import type { ActionAssuranceResponse as ActionAnswer, AssuranceResponse as Answer } from '../schemas.ts';
import {
  AssuranceAnswer,
  AssuranceQuery,
  IdentityParams,
  VerifyRequest,
  VerifyResponse,
} from '../schemas.ts';
import type { TokenGrant } from '../tokens.ts';

/** What an app asks before a high-risk action, and whether what the user completed was enough. */

export const getAssurance = defineRoute({
  operationId: 'getAssurance',
  method: 'GET',
  path: '/v1/identities/{id}/assurance',
  tag: 'decisions',
  summary: 'What each tier of action (or one action) requires of this identity now',
  description:
    'Without `action`: the requirement of every tier. With `action`: its tier and requirement. ' +
    'An identity the engine has not decided yet gets the policy baseline with sequence 0. When ' +
    'fresh data is unavailable (Redis down, engine lagging, decision stale) the answer is still ' +
    '200, with `degraded: true` and the strictest requirement: never an error to read as "allow".',
  scope: 'decisions:read',
  params: IdentityParams,
  query: AssuranceQuery,
  responses: {
    200: {
      description: 'The requirement (all tiers, or the one of `action`)',
      schema: AssuranceAnswer,
    },
  },
  problems: ['unknown_action', 'not_found'],
});

export const verifyAssurance = defineRoute({
  operationId: 'verifyAssurance',
  method: 'POST',
  path: '/v1/assurance/verify',
  tag: 'decisions',
  summary: 'Did what the user just completed satisfy the requirement of an action, and what is missing',
  description:
    "Checks the completion against the current requirement of the action's tier. A degraded " +
    'answer checks against the strictest requirement, which nothing satisfies.',
  scope: 'decisions:read',
  body: VerifyRequest,
  responses: { 200: { description: 'The verdict', schema: VerifyResponse } },
  problems: ['unknown_action'],
});

/**
 * The tier of an action, or a 400 `unknown-action` problem listing the actions the policy names:
 * a misspelt action is the caller's bug, and a plausible answer would hide it.
 */
export function tierOfAction(policy: Policy, action: string, location: 'query' | 'body') {
  const tier = policy.tierOf(action);
  if (tier !== undefined) return tier;
  throw new ApiProblem('unknown_action', `the policy does not name the action "${action}"`, {
    extensions: {
      knownActions: policy.actionNames,
      errors: [{ location, pointer: '/action', detail: 'not an action of the policy' }],
    },
  });
}

/**
 * A shadow policy for a what-if read: the caller needs `policy:read` besides `decisions:read` (a
 * candidate's answers are not the product's), and the name must be one of SHADOW_POLICIES.
 */
function shadowPolicy(shadows: ReadonlyMap<string, Policy>, name: string, caller: TokenGrant | null): Policy {
  if (!caller?.scopes.has('policy:read'))
    throw new ApiProblem('forbidden', 'what-if reads of a shadow policy need the scope policy:read', {
      extensions: { requiredScope: 'policy:read' },
    });
  const policy = shadows.get(name);
  if (!policy)
    throw new ApiProblem('not_found', `no shadow policy "${name}"`, {
      extensions: { shadowPolicies: [...shadows.keys()] },
    });
  return policy;
}

/** Narrows an all-tiers answer to one action: its tier and requirement. */
export function forAction(policy: Policy, answer: Answer, action: string): ActionAnswer {
  const { tiers, ...envelope } = answer;
  const tier = tierOfAction(policy, action, 'query');
  return { ...envelope, action, tier, requirement: tiers[tier] };
}

/** Drops keys whose value is undefined (the policy's Completion has exact optional properties). */
function definedOnly<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/**
 * `hashChannel`: the binding a reported channel stands for, under the engine's secret; undefined
 * when this API has no secret (the channel is then not judged).
 */
export function registerAssuranceRoutes(
  app: FastifyInstance,
  reader: AssuranceReader,
  hashChannel: ((channel: Channel) => BindingRef) | undefined,
  shadows: ReadonlyMap<string, Policy> = new Map(),
): void {
  mount(app, getAssurance, async ({ params, query }, request) => {
    const policy =
      query.policy === undefined ? reader.policy : shadowPolicy(shadows, query.policy, request.caller);
    // Refused before any read: the answer would not depend on the identity's state.
    if (query.action !== undefined) tierOfAction(policy, query.action, 'query');
    const answer = await reader.read(params.id, request.caller, policy);
    return query.action === undefined ? answer : forAction(policy, answer, query.action);
  });

  mount(app, verifyAssurance, async ({ body }, request) => {
    tierOfAction(reader.policy, body.action, 'body');
    const answer = forAction(reader.policy, await reader.read(body.identityId, request.caller), body.action);
    const { channel: reported, ...rest } = body.completed;
    const channel = reported && hashChannel ? hashChannel(reported) : undefined;
    const completed = { ...definedOnly(rest), ...(channel ? { channel } : {}) };
    const verdict = verifyCompletion(answer.requirement, completed, new Date());
    return {
      satisfied: verdict.satisfied,
      missing: verdict.missing,
      action: answer.action,
      tier: answer.tier,
      requirement: answer.requirement,
      degraded: answer.degraded,
      degradedReasons: answer.degradedReasons,
      sequence: answer.sequence,
      ...(channel ? { channel } : {}),
    };
  });
}
