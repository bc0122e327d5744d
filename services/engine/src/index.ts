export type { EngineConfig } from './config.ts';
export { EngineConfigSchema, loadEngineConfig } from './config.ts';
export type { Engine } from './engine.ts';
export { startEngine } from './engine.ts';
export { createEngineMetrics } from './metrics.ts';
export type { ProvisionResult } from './provision.ts';
export { provision } from './provision.ts';
export type { InputRole, TopicNames, TopicRole } from './topics.ts';
export { BASE_TOPICS, INPUT_ROLES, topicNames } from './topics.ts';
