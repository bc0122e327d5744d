import { randomUUID } from 'node:crypto';
import type { Logger } from '@assurance/core';
import { AssuranceError } from '@assurance/core';
import type { ProducerPort } from '@assurance/kafka';
import { CompromiseSignalEvent, keyFor } from '@assurance/schemas';
import type { FastifyInstance } from 'fastify';
import type { ExplainDeps } from '../explain.ts';
import { explainIdentity } from '../explain.ts';
import type { ApiMetrics } from '../metrics.ts';
import { ApiProblem } from '../problem.ts';
import { defineRoute, mount, parsePart } from '../route-spec.ts';
import { IdentityParams, SignalAccepted, SignalRequest, SignalsResponse } from '../schemas.ts';

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
  scope: 'decisions:read',
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
    "Validated with the contract's CompromiseSignalEvent schema after the server fills `eventId` " +
    '(a new UUID), `occurredAt` (now) and `source` (`assurance-api`) when absent. Answered 202 only ' +
    'once every in-sync replica acknowledged the event. On 503 the event may still be delivered: ' +
    'retry with the same `eventId` (the engine dedupes on it).',
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

export function registerSignalRoutes(app: FastifyInstance, deps: SignalRouteDeps): void {
  mount(app, getSignals, async ({ params }) => explainIdentity(deps.explain, params.id));

  mount(app, postSignal, async ({ body }, request, reply) => {
    const filled = {
      ...body,
      eventId: body.eventId ?? randomUUID(),
      occurredAt: body.occurredAt ?? new Date().toISOString(),
      source: body.source ?? 'assurance-api',
      raisedBy: body.raisedBy ?? request.caller?.name,
    };
    // The contract's own schema has the last word on what goes to the topic.
    const event = parsePart(CompromiseSignalEvent, filled, 'body');
    const key = keyFor('identity.compromise-signal.v1', event);
    const send = deps.producer.send([
      {
        topic: deps.topic,
        key,
        value: JSON.stringify(event),
        headers: { 'content-type': 'application/json' },
      },
    ]);
    // The send keeps retrying after a timeout (idempotent producer): catch its late failure here.
    send.catch(() => {});
    try {
      await acknowledged(send, deps.produceTimeoutMs);
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
