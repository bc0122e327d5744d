import { z } from 'zod';
import { Trigger } from './decision.ts';
import { ChannelRef, SignalScope } from './state.ts';
import { ChannelType, SignalCode } from './vocabulary.ts';

/**
 * The internal identity-keyed topic (`assurance.identity-events.v1`): what the router hands the
 * decider. Only engines write it, but nothing read from Kafka is trusted by its type alone: the
 * decider validates every message against these schemas, and one that fails is dead-lettered and
 * fails its identity closed at once (docs/dead-letters.md). The mutation shapes are also the state
 * scripts' input (packages/redis), which takes its types from here.
 */

const Ms = z
  .number()
  .int()
  .min(-1)
  .max(2 ** 53 - 1);
const Key = z.string().min(1).max(600);
const Attrs = z.record(z.string().max(100), z.string().max(2000));
const Ref = ChannelRef.nullable();
/** The membership a channel fan-out came through: its op time and sync-account route. */
const Via = { mop: Ms.optional(), via: z.string().max(200).optional() };

export const Mutation = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('r'),
    k: Key,
    code: SignalCode,
    scope: SignalScope,
    ref: Ref,
    since: Ms,
    exp: Ms,
    ev: z.union([z.string().max(200), z.literal(false)]),
    at: Ms,
    attrs: Attrs,
    pk: Key.optional(),
    ...Via,
  }),
  z.object({
    t: z.literal('c'),
    k: Key,
    code: SignalCode,
    scope: SignalScope,
    ref: Ref,
    at: Ms,
    exp: Ms.optional(),
    ...Via,
  }),
  z.object({
    t: z.literal('m'),
    k: Key,
    code: SignalCode,
    scope: SignalScope,
    ref: Ref,
    cl: z.union([Ms, z.literal(false)]),
    lf: Ms,
    rs: z.array(z.tuple([Ms, Ms, Ms, z.union([z.string().max(200), z.literal(false)]), Attrs])).max(64),
    ...Via,
  }),
  z.object({
    t: z.literal('cp'),
    p: Key,
    code: SignalCode,
    scope: SignalScope,
    ref: Ref,
    at: Ms,
    ...Via,
  }),
  z.object({
    t: z.literal('b'),
    ref: ChannelRef,
    at: Ms,
    type: ChannelType,
    auth: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    rec: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    bat: Ms,
    via: z.array(z.string().max(200)).max(16).optional(),
  }),
  z.object({ t: z.literal('u'), ref: ChannelRef, at: Ms, type: ChannelType }),
]);
export type Mutation = z.infer<typeof Mutation>;

/** The tenant an event names, and when it happened: the newest event naming a tenant sets it. */
const TenantMark = z.object({ id: z.string().max(200), at: Ms }).nullable();

const Common = {
  v: z.literal(2),
  identityId: z.string().min(1).max(200),
  trigger: Trigger,
  /** When the original event entered the router (for event → decision latency). */
  receivedAtMs: Ms,
};

/**
 * One message of the internal topic (v2). A v1 message (from an engine before the state model of
 * docs/state.md) fails this schema: it is dead-lettered and its identity fails closed, and the
 * rebuild replays its input.
 */
export const RoutedMessage = z.discriminatedUnion('kind', [
  z.object({
    ...Common,
    kind: z.literal('apply'),
    tenant: TenantMark,
    mutations: z.array(Mutation).max(256).readonly(),
    /** A bind: the memberships the router wrote are kept until then (docs/state.md, channel membership). */
    joinedUntilMs: Ms.optional(),
  }),
  z.object({
    ...Common,
    kind: z.literal('login'),
    tenant: TenantMark,
    login: z.object({
      /** What makes two logins one (LoginRecord.h). */
      h: z.string().max(200),
      outcome: z.enum(['success', 'failure']),
      authenticator: z.string().max(100),
      deviceId: z.string().max(200).nullable(),
      network: z.string().max(200).nullable(),
      occurredAtMs: Ms,
    }),
  }),
  z.object({ ...Common, kind: z.literal('expire') }),
]);
export type RoutedMessage = z.infer<typeof RoutedMessage>;
