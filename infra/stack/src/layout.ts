import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { StackProblem } from './problems.ts';

/** Repository root: infra/stack/src/ is three levels down. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const Port = z.coerce.number().int().min(1024).max(65535);

/**
 * How far above STACK_KAFKA_CLUSTER_PORT the cluster's last port lies: the network fault run's
 * proxies (toxiproxy.ts) take the ports after the nodes' listeners.
 */
export const KAFKA_CLUSTER_PORT_SPAN = 46;

/**
 * Where the native stack lives and listens. One git-ignored folder holds every byte it writes,
 * so `rm -rf .stack` is a full reset. Ports are unusual on purpose: they must not collide with
 * a developer's own Kafka/Redis on the default ports.
 */
const StackEnv = z.object({
  STACK_DIR: z.string().min(1).default(path.join(REPO_ROOT, '.stack')),
  STACK_KAFKA_PORT: Port.default(19092),
  STACK_KAFKA_CONTROLLER_PORT: Port.default(19093),
  /** The broker's SASL_SSL listener (SCRAM-SHA-512 over TLS, ACLs enforced): for security tests. */
  STACK_KAFKA_SECURE_PORT: Port.default(19094),
  /** The broker's SSL listener that requires a client certificate (mutual TLS, ACLs enforced). */
  STACK_KAFKA_MTLS_PORT: Port.default(19095),
  STACK_REGISTRY_PORT: Port.default(18081),
  STACK_REDIS_PORT: Port.default(16379),
  /** The first of the six Redis Cluster nodes' ports (`npm run test:cluster`). */
  STACK_REDIS_CLUSTER_PORT: Port.default(17001),
  /**
   * The three-node Kafka cluster (`stack:up -- --cluster`): node n (1–3) listens for clients on
   * this port + n − 1 and for its controller quorum on this port + 10 + n − 1 (39092–39094 and
   * 39102–39104 by default); the ports up to 46 above are for proxied clients and the network
   * fault run's proxies (kafka-cluster.ts, toxiproxy.ts), hence the upper bound.
   */
  STACK_KAFKA_CLUSTER_PORT: Port.max(65535 - KAFKA_CLUSTER_PORT_SPAN).default(39092),
  STACK_KAFKA_HEAP: z
    .string()
    .regex(/^\d+[mg]$/)
    .default('768m'),
  /** Each of the three cluster nodes' heap: three JVMs share the machine with everything else. */
  STACK_KAFKA_CLUSTER_HEAP: z
    .string()
    .regex(/^\d+[mg]$/)
    .default('384m'),
  STACK_REGISTRY_HEAP: z
    .string()
    .regex(/^\d+[mg]$/)
    .default('384m'),
  STACK_START_TIMEOUT_S: z.coerce.number().int().positive().default(180),
  /** How long to wait for another apt/dpkg (unattended-upgrades…) when installing redis-server. */
  STACK_APT_LOCK_TIMEOUT_S: z.coerce.number().int().min(0).default(300),
  KAFKA_BROKERS: z.string().min(1).optional(),
  SCHEMA_REGISTRY_URL: z.url().optional(),
  REDIS_URL: z.url().optional(),
  /** A Redis Cluster the pipeline uses instead of a Redis server: the local one is not started. */
  REDIS_CLUSTER_NODES: z.string().min(1).optional(),
});
export type StackEnv = z.infer<typeof StackEnv>;

export interface StackLayout {
  readonly env: StackEnv;
  readonly dir: string;
  readonly stateFile: string;
  readonly kafka: {
    readonly home: string;
    readonly lib: string;
    readonly data: string;
    readonly logs: string;
  };
  readonly registry: {
    readonly home: string;
    readonly dist: string;
    readonly data: string;
    readonly logs: string;
  };
  readonly redis: { readonly home: string; readonly data: string; readonly logs: string };
}

/** Parses the stack's environment once; throws a readable error naming each bad variable. */
export function resolveLayout(source: NodeJS.ProcessEnv = process.env): StackLayout {
  const parsed = StackEnv.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new StackProblem(`invalid stack configuration:\n${lines.join('\n')}`);
  }
  const env = parsed.data;
  const dir = path.resolve(env.STACK_DIR);
  const sub = (name: string) => {
    const home = path.join(dir, name);
    return { home, data: path.join(home, 'data'), logs: path.join(home, 'logs') };
  };
  return {
    env,
    dir,
    stateFile: path.join(dir, 'stack.json'),
    kafka: { ...sub('kafka'), lib: path.join(dir, 'kafka', 'lib') },
    registry: { ...sub('registry'), dist: path.join(dir, 'registry', 'dist') },
    redis: sub('redis'),
  };
}
