import type { RoutedMessage } from '@assurance/schemas';

/**
 * Messages on the internal identity-keyed topic: the schema lives with the contract
 * (schemas/src/internal.ts), and the decider validates every one it reads.
 */
export type { RoutedMessage };

/** The tenant an event names, and when it happened: the newest event naming a tenant sets it. */
export type TenantMark = NonNullable<Extract<RoutedMessage, { kind: 'apply' }>['tenant']>;
