export { envBoolean, envDuration, envList, parseConfig, parseDuration } from './config.ts';
export type { Disposition, ErrorCode } from './errors.ts';
export { AssuranceError, asAssuranceError, dispositionOf, ERROR_CODES } from './errors.ts';
export type { Logger } from './logger.ts';
export { createLogger } from './logger.ts';
export {
  ChannelHashSecret,
  checkKafkaSecurity,
  checkRedisTarget,
  KafkaSecurityEnv,
  PipelineEnv,
} from './pipeline-env.ts';
export { runService } from './process.ts';
