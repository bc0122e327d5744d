import { randomUUID } from 'node:crypto';
import type { SsfTransmitStore, StoredStream } from '@assurance/redis';
import { DELIVERY_POLL, DELIVERY_PUSH, EVENT_TYPES, type SetSigner } from '@assurance/ssf';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiProblem } from '../problem.ts';
import { defineRoute, mount } from '../route-spec.ts';
import type { SsfTransmitter } from '../ssf-transmitter.ts';

/**
 * Our Shared Signals transmitter's HTTP side (SSF 1.0, RFC 8936): its discovery document and JWKS
 * (public), and for receivers (API tokens with `ssf:stream`; the token's name is the receiver, with
 * at most one stream) stream management and poll delivery.
 */

/** What we send: CAEP risk-level-change and RISC credential-compromise (and verification). */
export const EVENTS_SUPPORTED: readonly string[] = [
  EVENT_TYPES.riskLevelChange,
  EVENT_TYPES.credentialCompromise,
  EVENT_TYPES.verification,
];

const Delivery = z.strictObject({
  method: z.enum([DELIVERY_PUSH, DELIVERY_POLL]),
  endpoint_url: z.url().max(2000).optional(),
  authorization_header: z.string().max(2000).optional(),
});
const StreamIdQuery = z.strictObject({ stream_id: z.string().max(100).optional() });
const StreamIdOnly = z.strictObject({ stream_id: z.string().max(100) });

export const StreamCreateRequest = z.strictObject({
  events_requested: z.array(z.string().max(300)).max(64).default([]),
  delivery: Delivery.optional(),
  description: z.string().max(500).optional(),
  /** Our extension: the audience the receiver verifies (`aud`); default `<issuer>/receivers/<token name>`. */
  aud: z.string().min(1).max(300).optional(),
});
export const StreamUpdateRequest = z.strictObject({
  stream_id: z.string().max(100),
  events_requested: z.array(z.string().max(300)).max(64).optional(),
  delivery: Delivery.optional(),
  description: z.string().max(500).optional(),
});
export const StreamConfigurationResponse = z.object({
  stream_id: z.string(),
  iss: z.string(),
  aud: z.string(),
  events_supported: z.array(z.string()),
  events_requested: z.array(z.string()),
  events_delivered: z.array(z.string()),
  delivery: Delivery,
  description: z.string().optional(),
  min_verification_interval: z.number().int(),
});
export const StreamStatusRequest = z.strictObject({
  stream_id: z.string().max(100),
  status: z.enum(['enabled', 'paused', 'disabled']),
  reason: z.string().max(500).optional(),
});
export const StreamStatusResponse = z.object({
  stream_id: z.string(),
  status: z.enum(['enabled', 'paused', 'disabled']),
  reason: z.string().optional(),
});
export const SubjectRequest = z.strictObject({
  stream_id: z.string().max(100),
  subject: z.record(z.string(), z.unknown()),
  verified: z.boolean().optional(),
});
export const VerificationRequest = z.strictObject({
  stream_id: z.string().max(100),
  state: z.string().max(300).optional(),
});
export const PollRequest = z.strictObject({
  maxEvents: z.number().int().min(0).max(1000).default(100),
  returnImmediately: z.boolean().optional(),
  ack: z.array(z.string().max(100)).max(1000).default([]),
  setErrs: z.record(z.string().max(100), z.object({ err: z.string(), description: z.string() })).default({}),
});
export const PollResponse = z.object({
  sets: z.record(z.string(), z.string()),
  moreAvailable: z.boolean(),
});
export const SsfConfigurationResponse = z.object({
  spec_version: z.string(),
  issuer: z.string(),
  jwks_uri: z.string(),
  delivery_methods_supported: z.array(z.string()),
  configuration_endpoint: z.string(),
  status_endpoint: z.string(),
  add_subject_endpoint: z.string(),
  remove_subject_endpoint: z.string(),
  verification_endpoint: z.string(),
  poll_endpoint: z.string(),
  authorization_schemes: z.array(z.object({ spec_urn: z.string() })),
  default_subjects: z.literal('ALL'),
});
export const JwksResponse = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

const MIN_VERIFICATION_INTERVAL_S = 5;

export const ssfConfiguration = defineRoute({
  operationId: 'ssfConfiguration',
  method: 'GET',
  path: '/.well-known/ssf-configuration',
  tag: 'shared-signals',
  summary: "Our transmitter's discovery document (SSF 1.0)",
  responses: { 200: { description: 'The transmitter configuration', schema: SsfConfigurationResponse } },
  problems: ['not_found'],
});
export const ssfJwks = defineRoute({
  operationId: 'ssfJwks',
  method: 'GET',
  path: '/ssf/v1/jwks',
  tag: 'shared-signals',
  summary: 'The keys our Security Event Tokens are signed with',
  responses: { 200: { description: 'A JWK set (public keys)', schema: JwksResponse } },
  problems: ['not_found'],
});
export const StreamConfigurationList = z.union([
  StreamConfigurationResponse,
  z.array(StreamConfigurationResponse),
]);

export const createStream = defineRoute({
  operationId: 'createStream',
  method: 'POST',
  path: '/ssf/v1/streams',
  tag: 'shared-signals',
  summary: 'Create your stream (one per receiver)',
  scope: 'ssf:stream',
  body: StreamCreateRequest,
  responses: {
    201: { description: 'Created', schema: StreamConfigurationResponse },
    409: { description: 'You have a stream already', contentType: 'text/plain' },
  },
  problems: ['not_found'],
});
export const readStream = defineRoute({
  operationId: 'readStream',
  method: 'GET',
  path: '/ssf/v1/streams',
  tag: 'shared-signals',
  summary: 'Your stream (by stream_id, or a list of it)',
  scope: 'ssf:stream',
  query: StreamIdQuery,
  responses: { 200: { description: 'The stream, or a list', schema: StreamConfigurationList } },
  problems: ['not_found'],
});
export const updateStream = defineRoute({
  operationId: 'updateStream',
  method: 'PATCH',
  path: '/ssf/v1/streams',
  tag: 'shared-signals',
  summary: 'Change your stream',
  scope: 'ssf:stream',
  body: StreamUpdateRequest,
  responses: { 200: { description: 'The stream as changed', schema: StreamConfigurationResponse } },
  problems: ['not_found'],
});
export const deleteStream = defineRoute({
  operationId: 'deleteStream',
  method: 'DELETE',
  path: '/ssf/v1/streams',
  tag: 'shared-signals',
  summary: 'Delete your stream and what waits in it',
  scope: 'ssf:stream',
  query: StreamIdOnly,
  responses: { 204: { description: 'Deleted', contentType: 'text/plain' } },
  problems: ['not_found'],
});
export const readStatus = defineRoute({
  operationId: 'readStreamStatus',
  method: 'GET',
  path: '/ssf/v1/status',
  tag: 'shared-signals',
  summary: "Your stream's status",
  scope: 'ssf:stream',
  query: StreamIdOnly,
  responses: { 200: { description: 'Its status', schema: StreamStatusResponse } },
  problems: ['not_found'],
});
export const updateStatus = defineRoute({
  operationId: 'updateStreamStatus',
  method: 'POST',
  path: '/ssf/v1/status',
  tag: 'shared-signals',
  summary: 'Enable, pause (events are held) or disable (events are dropped) your stream',
  scope: 'ssf:stream',
  body: StreamStatusRequest,
  responses: { 200: { description: 'Its status now', schema: StreamStatusResponse } },
  problems: ['not_found'],
});
export const addSubject = defineRoute({
  operationId: 'addSubject',
  method: 'POST',
  path: '/ssf/v1/subjects/add',
  tag: 'shared-signals',
  summary: 'Receive events about this subject again (every subject is sent by default)',
  scope: 'ssf:stream',
  body: SubjectRequest,
  responses: { 200: { description: 'Added', contentType: 'text/plain' } },
  problems: ['not_found'],
});
export const removeSubject = defineRoute({
  operationId: 'removeSubject',
  method: 'POST',
  path: '/ssf/v1/subjects/remove',
  tag: 'shared-signals',
  summary: 'Receive no more events about this subject',
  scope: 'ssf:stream',
  body: SubjectRequest,
  responses: { 204: { description: 'Removed', contentType: 'text/plain' } },
  problems: ['not_found'],
});
export const requestVerification = defineRoute({
  operationId: 'requestVerification',
  method: 'POST',
  path: '/ssf/v1/verify',
  tag: 'shared-signals',
  summary: 'Ask for a verification event echoing your state',
  scope: 'ssf:stream',
  body: VerificationRequest,
  responses: {
    204: { description: 'Queued', contentType: 'text/plain' },
    429: { description: 'Asked again within min_verification_interval', contentType: 'text/plain' },
  },
  problems: ['not_found'],
});
export const pollSets = defineRoute({
  operationId: 'pollSecurityEvents',
  method: 'POST',
  path: '/ssf/v1/poll',
  tag: 'shared-signals',
  summary: 'Poll your stream (RFC 8936): acknowledge and answer errors, receive what waits',
  scope: 'ssf:stream',
  body: PollRequest,
  responses: { 200: { description: 'SETs by jti', schema: PollResponse } },
  problems: ['not_found'],
});

export interface SsfTxRouteDeps {
  /** Absent when SSF_ISSUER is unset: every route answers 404. */
  readonly transmitter:
    | { readonly signer: SetSigner; readonly store: SsfTransmitStore; readonly runtime: SsfTransmitter }
    | undefined;
}

const receiverOf = (request: FastifyRequest): string => {
  if (request.caller === null) throw new ApiProblem('unauthorized', 'a bearer token is required');
  return request.caller.name;
};

function view(issuer: string, s: StoredStream) {
  return {
    stream_id: s.stream_id,
    iss: issuer,
    aud: s.aud,
    events_supported: EVENTS_SUPPORTED,
    events_requested: [...s.events_requested],
    events_delivered: [...s.events_delivered],
    delivery: s.delivery,
    ...(s.description === undefined ? {} : { description: s.description }),
    min_verification_interval: MIN_VERIFICATION_INTERVAL_S,
  };
}

const delivered = (requested: readonly string[]) => [
  ...new Set([...requested.filter((e) => EVENTS_SUPPORTED.includes(e)), EVENT_TYPES.verification]),
];

export function registerSsfTxRoutes(app: FastifyInstance, deps: SsfTxRouteDeps): void {
  const tx = () => {
    if (!deps.transmitter)
      throw new ApiProblem('not_found', 'this deployment transmits no Shared Signals (SSF_ISSUER)');
    return deps.transmitter;
  };
  /** The caller's stream; `id`, when given, must be it. */
  const mine = async (request: FastifyRequest, id?: string): Promise<StoredStream> => {
    const receiver = receiverOf(request);
    const found = (await tx().store.streams()).find(
      (s) => s.receiver === receiver && (id === undefined || s.stream_id === id),
    );
    if (!found) throw new ApiProblem('not_found', 'no such stream of yours');
    return found;
  };
  const lastVerification = new Map<string, number>();

  mount(app, ssfConfiguration, async () => {
    const issuer = tx().signer.issuer;
    return {
      spec_version: '1_0',
      issuer,
      jwks_uri: `${issuer}/ssf/v1/jwks`,
      delivery_methods_supported: [DELIVERY_PUSH, DELIVERY_POLL],
      configuration_endpoint: `${issuer}/ssf/v1/streams`,
      status_endpoint: `${issuer}/ssf/v1/status`,
      add_subject_endpoint: `${issuer}/ssf/v1/subjects/add`,
      remove_subject_endpoint: `${issuer}/ssf/v1/subjects/remove`,
      verification_endpoint: `${issuer}/ssf/v1/verify`,
      poll_endpoint: `${issuer}/ssf/v1/poll`,
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
      default_subjects: 'ALL' as const,
    };
  });
  mount(app, ssfJwks, async () => tx().signer.jwks());

  mount(app, createStream, async ({ body }, request, reply) => {
    const { signer, store, runtime } = tx();
    const receiver = receiverOf(request);
    if ((await store.streams()).some((s) => s.receiver === receiver))
      return reply.code(409).type('text/plain').send('');
    const delivery = body.delivery ?? { method: DELIVERY_POLL };
    if (delivery.method === DELIVERY_PUSH && !delivery.endpoint_url)
      throw new ApiProblem('validation_failed', 'push delivery needs delivery.endpoint_url', {
        extensions: {
          errors: [{ location: 'body', pointer: '/delivery/endpoint_url', detail: 'required for push' }],
        },
      });
    const s: StoredStream = {
      stream_id: randomUUID(),
      receiver,
      aud: body.aud ?? `${signer.issuer}/receivers/${receiver}`,
      delivery,
      events_requested: body.events_requested,
      events_delivered: delivered(body.events_requested),
      ...(body.description === undefined ? {} : { description: body.description }),
      status: 'enabled',
      removed: [],
      createdAt: Date.now(),
    };
    await store.saveStream(s);
    runtime.invalidate();
    return reply.code(201).send(view(signer.issuer, s));
  });
  mount(app, readStream, async ({ query }, request) => {
    const { signer, store } = tx();
    if (query.stream_id !== undefined) return view(signer.issuer, await mine(request, query.stream_id));
    const receiver = receiverOf(request);
    return (await store.streams()).filter((s) => s.receiver === receiver).map((s) => view(signer.issuer, s));
  });
  mount(app, updateStream, async ({ body }, request) => {
    const { signer, store, runtime } = tx();
    const s = await mine(request, body.stream_id);
    const next: StoredStream = {
      ...s,
      ...(body.events_requested
        ? { events_requested: body.events_requested, events_delivered: delivered(body.events_requested) }
        : {}),
      ...(body.delivery ? { delivery: body.delivery } : {}),
      ...(body.description === undefined ? {} : { description: body.description }),
    };
    await store.saveStream(next);
    runtime.invalidate();
    return view(signer.issuer, next);
  });
  mount(app, deleteStream, async ({ query }, request, reply) => {
    const { store, runtime } = tx();
    const s = await mine(request, query.stream_id);
    await store.deleteStream(s.stream_id);
    runtime.invalidate();
    return reply.code(204).send();
  });
  mount(app, readStatus, async ({ query }, request) => {
    const s = await mine(request, query.stream_id);
    return { stream_id: s.stream_id, status: s.status, ...(s.reason ? { reason: s.reason } : {}) };
  });
  mount(app, updateStatus, async ({ body }, request) => {
    const { store, runtime } = tx();
    const s = await mine(request, body.stream_id);
    const next: StoredStream = { ...s, status: body.status, ...(body.reason ? { reason: body.reason } : {}) };
    await store.saveStream(next);
    runtime.invalidate();
    return { stream_id: s.stream_id, status: next.status, ...(next.reason ? { reason: next.reason } : {}) };
  });
  const subjectId = (subject: Record<string, unknown>): string => {
    if (subject.format === 'iss_sub' && subject.iss === tx().signer.issuer && typeof subject.sub === 'string')
      return subject.sub;
    throw new ApiProblem(
      'validation_failed',
      'subjects are our identities: {"format":"iss_sub","iss":<our issuer>,"sub":<identity id>}',
      {
        extensions: {
          errors: [{ location: 'body', pointer: '/subject', detail: 'an iss_sub subject of this issuer' }],
        },
      },
    );
  };
  mount(app, addSubject, async ({ body }, request, reply) => {
    const { store, runtime } = tx();
    const s = await mine(request, body.stream_id);
    const id = subjectId(body.subject);
    await store.saveStream({ ...s, removed: s.removed.filter((x) => x !== id) });
    runtime.invalidate();
    return reply.code(200).type('text/plain').send('');
  });
  mount(app, removeSubject, async ({ body }, request, reply) => {
    const { store, runtime } = tx();
    const s = await mine(request, body.stream_id);
    const id = subjectId(body.subject);
    // Bounded: a receiver that wants few subjects should not take every subject by default.
    if (!s.removed.includes(id)) await store.saveStream({ ...s, removed: [...s.removed, id].slice(-10_000) });
    runtime.invalidate();
    return reply.code(204).send();
  });
  mount(app, requestVerification, async ({ body }, request, reply) => {
    const { signer, store } = tx();
    const s = await mine(request, body.stream_id);
    const now = Date.now();
    if (now - (lastVerification.get(s.stream_id) ?? 0) < MIN_VERIFICATION_INTERVAL_S * 1000)
      return reply
        .code(429)
        .header('retry-after', String(MIN_VERIFICATION_INTERVAL_S))
        .type('text/plain')
        .send('');
    lastVerification.set(s.stream_id, now);
    const jti = randomUUID();
    const token = await signer.sign({
      audience: s.aud,
      jti,
      txn: jti,
      subject: { format: 'opaque', id: s.stream_id },
      event: { type: EVENT_TYPES.verification, event: body.state === undefined ? {} : { state: body.state } },
    });
    await store.enqueue(s.stream_id, jti, token, now);
    return reply.code(204).send();
  });
  mount(app, pollSets, async ({ body }, request) => {
    const { store } = tx();
    const s = await mine(request);
    // Acknowledged, and answered with an error: both are done (the errors are the receiver's word).
    const answered = [...body.ack, ...Object.keys(body.setErrs)];
    await store.remove(s.stream_id, answered);
    for (const [jti, e] of Object.entries(body.setErrs))
      request.log.warn({ stream: s.stream_id, jti, err: e.err }, 'receiver answered a SET with an error');
    // A paused stream holds its events; a push stream is not polled.
    if (s.status !== 'enabled' || s.delivery.method !== DELIVERY_POLL || body.maxEvents === 0)
      return { sets: {}, moreAvailable: false };
    const { sets, more } = await store.peek(s.stream_id, body.maxEvents);
    return { sets: Object.fromEntries(sets.map((x) => [x.jti, x.token])), moreAvailable: more };
  });
}
