export { createAdmin } from './admin.ts';
export type { KafkaClient, KafkaClientOptions, KafkaSasl, KafkaTls } from './client.ts';
export { createKafka, kafkaSecurity, parseBrokers, probeBrokers } from './client.ts';
export type { RegistryCodecOptions } from './codec.ts';
export { DEFAULT_MAX_MESSAGE_BYTES, RegistryCodec } from './codec.ts';
export type { Compression, UndecodableCode } from './codecs.ts';
export {
  COMPRESSIONS,
  installCodecs,
  UNDECODABLE_DETAIL_HEADER,
  UNDECODABLE_HEADER,
  UNDECODABLE_SHA256_HEADER,
  UNDECODABLE_SIZE_HEADER,
} from './codecs.ts';
export { CONSUMER_DEFAULTS, CONSUMER_METADATA_MAX_AGE_MS, createConsumer } from './consumer.ts';
export type { EngineHealth, EngineWatchOptions, StalledPartition, WatchedGroup } from './engine-watch.ts';
export { EngineWatch } from './engine-watch.ts';
export { createProducer } from './producer.ts';
export type { ProvisionResult } from './provision.ts';
export { provision } from './provision.ts';
export { readTopicToEnd } from './read-topic.ts';
export type { TailOptions, TopicTail } from './tail-topic.ts';
export { tailTopic } from './tail-topic.ts';
export type * from './types.ts';
export { muteKafkajsNegativeTimeoutWarning } from './warnings.ts';
