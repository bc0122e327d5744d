export { createAdmin } from './admin.ts';
export type { KafkaClientOptions } from './client.ts';
export { createKafka, parseBrokers } from './client.ts';
export type { Decoded, RegistryCodecOptions } from './codec.ts';
export { avroToPlain, DEFAULT_MAX_MESSAGE_BYTES, RegistryCodec } from './codec.ts';
export { createConsumer } from './consumer.ts';
export { createProducer } from './producer.ts';
export type * from './types.ts';
export { muteKafkajsNegativeTimeoutWarning } from './warnings.ts';
