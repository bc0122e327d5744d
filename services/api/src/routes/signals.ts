import { randomUUID } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { AssuranceError } from '@assurance/core';
import type { ProducerPort } from '@assurance/kafka';
import { CompromiseSignalEvent, keyFor } from '@assurance/schemas';
import type { FastifyInstance } from 'fastify';
import { checkTenant } from '../auth.ts';
import type { ExplainDeps } from '../explain.ts';
import { explainIdentity } from '../explain.ts';
import type { ApiMetrics } from '../metrics.ts';
import { ApiProblem } from '../problem.ts';
import { defineRoute, mount, parsePart } from '../route-spec.ts';
import { IdentityParams, SignalAccepted, SignalRequest, SignalsResponse } from '../schemas.ts';
import type { TokenGrant } from '../tokens.ts';

/** SOC: explain an identity's state, raise and clear compromise signals. */

export const getSignals = defineRoute({
  operationId: 'getSignals',
  method: 'GET',
  path: '/v1/identities/{id}/signals',
  tag: 'signals',
  summary: 'The live signals of an identity, why they matter, and its bindings',
  description:
    'Each live signal with the policy rules it makes fire (reason codes and operator texts), the ' +
    "identity's bindings as channel type, hashed ref and uses (never channel values), and every " +
    'reason behind the current evaluation.',
  scope: 'signals:read',
  params: IdentityParams,
  responses: { 200: { description: 'The explanation', schema: SignalsResponse } },
  problems: ['redis_unavailable'],
});

export const postSignal = defineRoute({
  operationId: 'postSignal',
  method: 'POST',
  path: '/v1/signals',
  tag: 'signals',
  summary: 'Raise or clear a compromise signal (identity.compromise-signal.v1)',
  description:
    "Validated with the contract's CompromiseSignalEvent schema after the server fills in who and " +
    "when: `raisedBy` is the calling token's name, `eventId` is `api.<token name>.<yours or a new " +
    'UUID>`, `occurredAt` defaults to now and may be at most a minute ahead, `source` is ' +
    '`assurance-api`. A clear needs the `signals:clear` scope besides. Answered 202 only once every ' +
    'in-sync replica acknowledged the event. On 503 the event may still be delivered: retry with the ' +
    'same `eventId` (the engine dedupes on it).',
  scope: 'signals:write',
  body: SignalRequest,
  responses: { 202: { description: 'Acknowledged by Kafka', schema: SignalAccepted } },
  problems: ['kafka_unavailable'],
});

export interface SignalRouteDeps {
  readonly explain: ExplainDeps;
  readonly producer: ProducerPort;
  /** The namespaced `identity.compromise-signal.v1`. */
  readonly topic: string;
  readonly produceTimeoutMs: number;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
}

/**
 * A token bound to tenants writes only about identities of its tenants: a signal on an identity
 * (or its credentials and tokens) whose stored tenant is one of them. A channel is shared across
 * tenants, and a signal on it reaches every identity that holds it: only unbound tokens may.
 */
export async function checkSignalTenant(
  deps: Pick<SignalRouteDeps, 'explain'>,
  caller: TokenGrant,
  body: {
    tenantId?: string | undefined;
    subject: { type: string; value: string; identityId?: string | undefined };
  },
): Promise<void> {
  const { subject } = body;
  // The newest event naming a tenant sets an identity's tenant: naming another would move it.
  if (body.tenantId !== undefined && !caller.tenants?.has(body.tenantId)) {
    throw new ApiProblem('forbidden', 'a token bound to tenants may name only its own tenants', {
      extensions: { tenants: [...(caller.tenants ?? [])] },
    });
  }
  const owner =
    subject.type === 'identity'
      ? subject.value
      : subject.type === 'credential' || subject.type === 'token'
        ? (subject.identityId ?? subject.value.split('/')[0])
        : undefined;
  if (owner === undefined) {
    throw new ApiProblem(
      'forbidden',
      'a token bound to tenants may not raise or clear signals on a shared channel',
      {
        extensions: { tenants: [...(caller.tenants ?? [])] },
      },
    );
  }
  const { record } = await deps.explain.store.readWithStatus(owner, Date.now()).catch((err: unknown) => {
    throw new ApiProblem('redis_unavailable', "the identity's tenant cannot be read now; retry shortly", {
      cause: err,
      headers: { 'retry-after': '1' },
    });
  });
  // An identity not seen yet has no tenant to check against: refused, a bound token proves nothing.
  if (record === null) {
    throw new ApiProblem(
      'forbidden',
      'this identity has no known tenant yet; a token bound to tenants cannot write about it',
      {
        extensions: { tenants: [...(caller.tenants ?? [])] },
      },
    );
  }
  checkTenant(caller, record);
}

/** How far ahead of the API's clock a signal may be dated. */
const MAX_AHEAD_MS = 60_000;

function refused(pointer: string, detail: string): ApiProblem {
  return new ApiProblem('validation_failed', detail, {
    extensions: { errors: [{ location: 'body', pointer, detail }] },
  });
}

async function acknowledged(send: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AssuranceError('kafka_unavailable', `no acknowledgement within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([send, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Produces one compromise signal, keyed as the contract says, and resolves once the broker
 * acknowledged it; rejects with `kafka_unavailable` after `produceTimeoutMs` (the send may still
 * land: the producer is idempotent and the engine dedupes on the event id).
 */
export async function publishSignal(
  deps: Pick<SignalRouteDeps, 'producer' | 'topic' | 'produceTimeoutMs'>,
  event: CompromiseSignalEvent,
): Promise<void> {
  const send = deps.producer.send([
    {
      topic: deps.topic,
      key: keyFor('identity.compromise-signal.v1', event),
      value: JSON.stringify(event),
      headers: { 'content-type': 'application/json' },
    },
  ]);
  // The send keeps retrying after a timeout (idempotent producer): catch its late failure here.
  send.catch(() => {});
  await acknowledged(send, deps.produceTimeoutMs);
}

export function registerSignalRoutes(app: FastifyInstance, deps: SignalRouteDeps): void {
  mount(app, getSignals, async ({ params }, request) =>
    explainIdentity(deps.explain, params.id, request.caller),
  );

  mount(app, postSignal, async ({ body }, request, reply) => {
    const caller = request.caller;
    if (caller === null) throw new ApiProblem('unauthorized', 'a bearer token is required');
    // A clear relaxes requirements: a right of its own, not implied by raising.
    if (body.op === 'clear' && !caller.scopes.has('signals:clear')) {
      throw new ApiProblem('forbidden', 'clearing a signal requires the scope signals:clear', {
        extensions: { requiredScope: 'signals:clear' },
      });
    }
    if (body.raisedBy !== undefined && body.raisedBy !== caller.name) {
      throw refused('/raisedBy', `raisedBy is the calling token's name (${caller.name})`);
    }
    if (caller.tenants !== null) await checkSignalTenant(deps, caller, body);
    const nowMs = Date.now();
    if (body.occurredAt !== undefined && Date.parse(body.occurredAt) > nowMs + MAX_AHEAD_MS) {
      // A clear dated ahead would block every raise until then, while the API answered 202.
      throw refused('/occurredAt', 'occurredAt may be at most a minute ahead of the API clock');
    }
    const filled = {
      ...body,
      // Namespaced by the token: no caller can use up the ids of another source, or another token's.
      eventId: `api.${caller.name}.${body.eventId ?? randomUUID()}`,
      occurredAt: body.occurredAt ?? new Date(nowMs).toISOString(),
      source: 'assurance-api',
      raisedBy: caller.name,
    };
    // The contract's own schema has the last word on what goes to the topic.
    const event = parsePart(CompromiseSignalEvent, filled, 'body');
    try {
      await publishSignal(deps, event);
    } catch (err) {
      throw new ApiProblem(
        'kafka_unavailable',
        'Kafka did not acknowledge the signal; it may still be delivered: retry with the same eventId',
        { cause: err, headers: { 'retry-after': '1' }, extensions: { eventId: event.eventId } },
      );
    }
    deps.metrics.signals.inc({ op: event.op });
    // Subject values are channel data (phones, addresses): log the type only.
    deps.logger.info(
      {
        eventId: event.eventId,
        signalId: event.signalId,
        op: event.op,
        kind: event.kind,
        subjectType: event.subject.type,
        caller: request.caller?.name,
      },
      'compromise signal acknowledged',
    );
    reply.code(202);
    return { eventId: event.eventId, topic: deps.topic };
  });
}
