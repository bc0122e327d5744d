// Topic naming lives with the contract (schemas/src/topic-names.ts); the engine's modules import it here.
export type { InputRole, TopicNames, TopicRole } from '@assurance/schemas';
export { BASE_TOPICS, INPUT_ROLES, roleOf, topicNames } from '@assurance/schemas';
