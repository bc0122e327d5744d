import type { Mutation } from '@assurance/redis';
import type { Trigger } from '@assurance/schemas';

/**
 * Messages on the internal identity-keyed topic. The router has already validated, normalized,
 * hashed channels and deduplicated channel-side work; the decider applies and decides.
 */
export type RoutedMessage =
  | {
      readonly v: 1;
      readonly kind: 'apply';
      readonly identityId: string;
      readonly tenantId: string | null;
      readonly eventKey: string;
      readonly trigger: Trigger;
      /** When the original event entered the router (for event → decision latency). */
      readonly receivedAtMs: number;
      readonly mutations: readonly Mutation[];
    }
  | {
      readonly v: 1;
      readonly kind: 'login';
      readonly identityId: string;
      readonly tenantId: string | null;
      readonly eventKey: string;
      readonly trigger: Trigger;
      readonly receivedAtMs: number;
      readonly login: {
        readonly outcome: 'success' | 'failure';
        readonly authenticator: string;
        readonly deviceId: string | null;
        readonly network: string | null;
        readonly occurredAtMs: number;
      };
    }
  | {
      readonly v: 1;
      readonly kind: 'expire';
      readonly identityId: string;
      readonly trigger: Trigger;
      readonly receivedAtMs: number;
    };
