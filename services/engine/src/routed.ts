import type { Mutation } from '@assurance/redis';
import type { Trigger } from '@assurance/schemas';

/** The tenant an event names, and when it happened: the newest event naming a tenant sets it. */
export interface TenantMark {
  readonly id: string;
  readonly at: number;
}

/**
 * Messages on the internal identity-keyed topic (v2). The router has already validated, normalized
 * and hashed channels and done the channel-side work; the decider applies and decides. A v1
 * message (from an engine before the state model of docs/state.md) cannot be applied: it is
 * dead-lettered and its identity fails closed, and the rebuild replays its input.
 */
export type RoutedMessage =
  | {
      readonly v: 2;
      readonly kind: 'apply';
      readonly identityId: string;
      readonly tenant: TenantMark | null;
      readonly trigger: Trigger;
      /** When the original event entered the router (for event → decision latency). */
      readonly receivedAtMs: number;
      readonly mutations: readonly Mutation[];
      /** A bind: the memberships the router wrote are kept until then (docs/state.md, channel membership). */
      readonly joinedUntilMs?: number;
    }
  | {
      readonly v: 2;
      readonly kind: 'login';
      readonly identityId: string;
      readonly tenant: TenantMark | null;
      readonly trigger: Trigger;
      readonly receivedAtMs: number;
      readonly login: {
        /** What makes two logins one (LoginRecord.h). */
        readonly h: string;
        readonly outcome: 'success' | 'failure';
        readonly authenticator: string;
        readonly deviceId: string | null;
        readonly network: string | null;
        readonly occurredAtMs: number;
      };
    }
  | {
      readonly v: 2;
      readonly kind: 'expire';
      readonly identityId: string;
      readonly trigger: Trigger;
      readonly receivedAtMs: number;
    };
