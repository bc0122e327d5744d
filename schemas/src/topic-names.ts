/** The v1 topic names (docs/contract.md, topics), plus the engine's internal identity-keyed topic. */
export const BASE_TOPICS = {
  login: 'identity.login.v1',
  device: 'identity.device.v1',
  simSwap: 'identity.sim-swap.v1',
  mailboxChange: 'identity.mailbox-change.v1',
  channelBinding: 'identity.channel-binding.v1',
  compromiseSignal: 'identity.compromise-signal.v1',
  decisions: 'assurance.decisions.v1',
  audit: 'assurance.audit.v1',
  dlq: 'assurance.dlq.v1',
  /** What candidate (shadow) policies would have decided beside each live decision; never read as one. */
  shadow: 'assurance.shadow.v1',
  /**
   * Internal: every event re-keyed by identity, so that one consumer owns each identity and its
   * decisions are produced in order even when several engines share the input partitions.
   */
  identityEvents: 'assurance.identity-events.v1',
} as const;

export type TopicRole = keyof typeof BASE_TOPICS;
export type TopicNames = { readonly [K in TopicRole]: string };

export const INPUT_ROLES = [
  'login',
  'device',
  'simSwap',
  'mailboxChange',
  'channelBinding',
  'compromiseSignal',
] as const;
export type InputRole = (typeof INPUT_ROLES)[number];

/** Topic names under a namespace (`''` for the real names). */
export function topicNames(namespace: string): TopicNames {
  const ns = namespace ? `${namespace}.` : '';
  return Object.fromEntries(
    Object.entries(BASE_TOPICS).map(([role, name]) => [role, `${ns}${name}`]),
  ) as TopicNames;
}

/** The role of a (namespaced) topic name, or undefined. */
export function roleOf(names: TopicNames, topic: string): TopicRole | undefined {
  return (Object.keys(names) as TopicRole[]).find((r) => names[r] === topic);
}

const DAY_MS = 86_400_000;

/**
 * The internal topic's configs (its partitions are the deployment's INTERNAL_PARTITIONS): a week of
 * re-keyed events, ample for a decider to catch up after an outage, never the record of anything.
 */
export const INTERNAL_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  'cleanup.policy': 'delete',
  'retention.ms': String(7 * DAY_MS),
};

/** The engine's two consuming stages. */
export type EngineStage = 'router' | 'decider';

/**
 * The engine's consumer groups (`<group id>.router`, `<group id>.decider`) and the topics each
 * reads: the engine consumes with them, and the API and the client watch their offsets.
 */
export function engineStageGroups(
  groupId: string,
  names: TopicNames,
): Array<{ stage: EngineStage; groupId: string; topics: string[] }> {
  return [
    { stage: 'router', groupId: `${groupId}.router`, topics: INPUT_ROLES.map((r) => names[r]) },
    { stage: 'decider', groupId: `${groupId}.decider`, topics: [names.identityEvents] },
  ];
}
