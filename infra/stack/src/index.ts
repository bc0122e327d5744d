export type { KafkaCluster, KafkaClusterNode } from './kafka-cluster.ts';
export {
  KAFKA_CLUSTER_SIZE,
  kafkaClusterDown,
  kafkaClusterNodes,
  kafkaClusterPorts,
  kafkaClusterUp,
  killKafkaClusterNode,
  startKafkaClusterNode,
} from './kafka-cluster.ts';
export type { StackLayout } from './layout.ts';
export { REPO_ROOT, resolveLayout } from './layout.ts';
export { javaBinary } from './prereqs.ts';
export {
  describeStackProblem,
  exitOnStackProblem,
  logTails,
  PrerequisiteError,
  ServiceStartError,
  StackProblem,
} from './problems.ts';
export { provisionAll } from './provision.ts';
export type { RedisCluster } from './redis-cluster.ts';
export {
  CLUSTER_SIZE,
  redisClusterDown,
  redisClusterNodes,
  redisClusterPid,
  redisClusterUp,
} from './redis-cluster.ts';
export type { LocalService } from './services.ts';
export { kafka, redis, registry, SERVICES, secureKafka, stopService } from './services.ts';
export type { ClusterEndpoints, ClusterUpResult, ServiceStatus, StackEndpoints, UpResult } from './stack.ts';
export { clusterDown, clusterUp, readEndpoints, stackDown, stackStatus, stackUp } from './stack.ts';
export type { ProxySpec, ToxiproxyServer } from './toxiproxy.ts';
export {
  networkFaultPorts,
  networkFaultProxies,
  proxiedEndpoints,
  TOXIPROXY_VERSION,
  toxiproxyDown,
  toxiproxyUp,
} from './toxiproxy.ts';
