/**
 * Builders for the client's unit tests (not exported from the package): valid v1 decisions made
 * by the real policy, so tests never hand-write a requirement.
 */
import { evaluate, loadPolicyFile, type Policy } from '@assurance/policy';
import type { ActiveSignal, Decision } from '@assurance/schemas';

/** The shipped default policy, loaded once. */
export const policy: Policy = loadPolicyFile();

/** A valid decision for `identityId` at `sequence`, evaluated from `signals` at `now`. */
export function decisionFor(
  identityId: string,
  sequence: number,
  signals: ActiveSignal[] = [],
  now = new Date(),
): Decision {
  const e = evaluate(
    policy,
    { identityId, tenantId: null, bindingsKnown: false, bindings: [], signals },
    now,
  );
  return {
    identityId,
    tenantId: null,
    sequence,
    policyVersion: policy.version,
    policyDigest: policy.digest,
    computedAt: now.toISOString(),
    validUntil: e.validUntil,
    riskLevel: e.riskLevel,
    tiers: e.tiers,
    signals,
    bindingsKnown: false,
    trigger: { eventId: `evt-${sequence}`, topic: 'identity.sim-swap.v1', occurredAt: now.toISOString() },
  };
}

/** An identity-wide SOC takeover signal: medium and above hold, critical denies. */
export function takeover(now = new Date()): ActiveSignal {
  return {
    code: 'takeover_confirmed',
    scope: 'identity',
    ref: null,
    since: new Date(now.getTime() - 60_000).toISOString(),
    expiresAt: null,
    sourceEventIds: ['evt-soc'],
    attributes: {},
  };
}

/** A Kafka-shaped message carrying `value` as JSON under `key`. */
export function message(key: string | null, value: unknown, headers: Record<string, string> = {}) {
  return {
    partition: 0,
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    headers,
  };
}
