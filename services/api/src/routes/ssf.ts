import type { Logger } from '@assurance/core';
import { AssuranceError } from '@assurance/core';
import { KeysUnavailable, MAX_SET_BYTES, outcomeOf, type SetReceiver, SetRejection } from '@assurance/ssf';
import type { FastifyInstance } from 'fastify';
import type { ApiMetrics } from '../metrics.ts';
import { ApiProblem } from '../problem.ts';
import { defineRoute, mount } from '../route-spec.ts';
import { SetErrorResponse, TransmitterParams } from '../schemas.ts';

/** Shared Signals: Security Event Tokens pushed by configured transmitters (RFC 8935). */

export const SET_CONTENT_TYPE = 'application/secevent+jwt';

export const pushSet = defineRoute({
  operationId: 'pushSecurityEvent',
  method: 'POST',
  path: '/ssf/v1/push/{transmitter}',
  tag: 'shared-signals',
  summary: 'Receive a Security Event Token (RFC 8935 push)',
  description:
    'A signed SET from a transmitter named in SSF_TRANSMITTERS_FILE, with its push token as bearer. ' +
    'It is verified (typ secevent+jwt, an allowed asymmetric algorithm, a key of its JWKS, iss, aud, ' +
    'jti, iat, no sub or exp, exactly one event) and mapped to a compromise signal (docs/shared-signals.md), ' +
    'answered 202 once Kafka acknowledged it. A SET received again is acknowledged again and applied ' +
    'once. Refusals are RFC 8935 error objects; 503 means retry the same SET later.',
  auth: 'transmitter',
  params: TransmitterParams,
  rawBody: { contentType: SET_CONTENT_TYPE, description: 'The SET: a compact JWS' },
  responses: {
    202: { description: 'Accepted (applied, or acknowledged without effect)', contentType: 'text/plain' },
    400: { description: 'Refused: the SET is invalid (RFC 8935 error)', schema: SetErrorResponse },
    401: { description: 'authentication_failed: no or a wrong push token', schema: SetErrorResponse },
    403: { description: 'access_denied: no such transmitter, or it does not push', schema: SetErrorResponse },
  },
  problems: ['not_found', 'not_ready', 'payload_too_large'],
});

export interface SsfRouteDeps {
  /** Absent when SSF_TRANSMITTERS_FILE is unset: the route answers 404. */
  readonly receiver: SetReceiver | undefined;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
}

const STATUS: Record<SetRejection['err'], number> = {
  invalid_request: 400,
  invalid_key: 400,
  invalid_issuer: 400,
  invalid_audience: 400,
  invalid_state: 400,
  authentication_failed: 401,
  access_denied: 403,
};

export function registerSsfRoutes(app: FastifyInstance, deps: SsfRouteDeps): void {
  // The SET arrives as text; any other type is refused by the handler as an RFC 8935 error.
  app.addContentTypeParser(
    SET_CONTENT_TYPE,
    { parseAs: 'string', bodyLimit: MAX_SET_BYTES },
    (_req, body, done) => done(null, body),
  );

  mount(app, pushSet, async ({ params }, request, reply) => {
    const receiver = deps.receiver;
    if (receiver === undefined)
      throw new ApiProblem(
        'not_found',
        'no Shared Signals transmitters are configured (SSF_TRANSMITTERS_FILE)',
      );
    // A label from the configuration only: a name in the URL is anyone's to choose.
    const label = receiver.transmitter(params.transmitter) ? params.transmitter : '(unknown)';
    const count = (outcome: string) => deps.metrics.ssfSets.inc({ transmitter: label, outcome });
    try {
      receiver.authenticate(params.transmitter, request.headers.authorization);
      const type = String(request.headers['content-type'] ?? '')
        .split(';')[0]
        ?.trim()
        .toLowerCase();
      if (type !== SET_CONTENT_TYPE || typeof request.body !== 'string')
        throw new SetRejection(
          'invalid_request',
          'malformed',
          `the body must be a SET sent as ${SET_CONTENT_TYPE}`,
        );
      const received = await receiver.receive(params.transmitter, request.body.trim());
      const outcome = outcomeOf(received);
      count(outcome);
      // Subjects are personal data (phones, addresses): never logged; the jti and type are.
      request.log.info(
        {
          transmitter: label,
          jti: received.set.jti,
          eventType: received.set.eventType,
          outcome,
          ...(received.kind === 'signal'
            ? { eventId: received.event.eventId, signalId: received.event.signalId, op: received.event.op }
            : {}),
        },
        'security event received',
      );
      return reply.code(202).type('text/plain').send('');
    } catch (err) {
      if (err instanceof SetRejection) {
        count(outcomeOf(err));
        request.log.warn({ transmitter: label, err: err.err, reason: err.reason }, 'security event refused');
        if (err.err === 'authentication_failed') reply.header('www-authenticate', 'Bearer');
        return reply.code(STATUS[err.err]).send({ err: err.err, description: err.description });
      }
      if (
        err instanceof KeysUnavailable ||
        (err instanceof AssuranceError && err.code === 'kafka_unavailable')
      ) {
        count('retry');
        request.log.warn(
          { transmitter: label, err },
          'security event not accepted now; the transmitter retries',
        );
        throw new ApiProblem(
          'not_ready',
          err instanceof KeysUnavailable
            ? "the transmitter's keys cannot be read now; retry the same SET later"
            : 'Kafka did not acknowledge the signal; retry the same SET later (it is applied once)',
          { cause: err, headers: { 'retry-after': '5' } },
        );
      }
      throw err;
    }
  });
}
