import type { Policy } from '@assurance/policy';
import { verifyCompletion } from '@assurance/policy';
import type { FastifyInstance } from 'fastify';
import type { AssuranceReader } from '../assurance-reader.ts';
import { defineRoute, mount } from '../route-spec.ts';
import type { ActionAssuranceResponse as ActionAnswer, AssuranceResponse as Answer } from '../schemas.ts';
import {
  AssuranceAnswer,
  AssuranceQuery,
  IdentityParams,
  VerifyRequest,
  VerifyResponse,
} from '../schemas.ts';

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
});

/** Narrows an all-tiers answer to one action: its tier and requirement (unknown actions are critical). */
export function forAction(policy: Policy, answer: Answer, action: string): ActionAnswer {
  const { tiers, ...envelope } = answer;
  const tier = policy.tierFor(action);
  return { ...envelope, action, tier, requirement: tiers[tier] };
}

/** Drops keys whose value is undefined (the policy's Completion has exact optional properties). */
function definedOnly<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

export function registerAssuranceRoutes(app: FastifyInstance, reader: AssuranceReader): void {
  mount(app, getAssurance, async ({ params, query }) => {
    const answer = await reader.read(params.id);
    return query.action === undefined ? answer : forAction(reader.policy, answer, query.action);
  });

  mount(app, verifyAssurance, async ({ body }) => {
    const answer = forAction(reader.policy, await reader.read(body.identityId), body.action);
    const verdict = verifyCompletion(answer.requirement, definedOnly(body.completed), new Date());
    return {
      satisfied: verdict.satisfied,
      missing: verdict.missing,
      action: answer.action,
      tier: answer.tier,
      requirement: answer.requirement,
      degraded: answer.degraded,
      degradedReasons: answer.degradedReasons,
      sequence: answer.sequence,
    };
  });
}
