/**
 * `npm run stack:up | stack:down | stack:status` and `npm run provision`: the native local stack
 * (Kafka KRaft, Apicurio Registry, Redis) on loopback, no Docker. See README "Local stack".
 */
import { parseArgs } from 'node:util';
import { exitOnStackProblem, StackProblem } from './problems.ts';
import { clusterDown, clusterUp, stackDown, stackStatus, stackUp } from './stack.ts';

const log = (msg: string) => process.stderr.write(`[stack] ${msg}\n`);

export const COMMANDS = ['up', 'down', 'status', 'provision'] as const;
type Command = (typeof COMMANDS)[number];

export const USAGE = `usage: npm run stack:up | stack:down | stack:status | provision [-- --help]
       (node infra/stack/src/cli.ts up | down | status | provision)

  up         start Kafka, the schema registry and Redis unless they already run (or
             KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL name others), provision topics and
             schemas, print the endpoints
  up --cluster
             instead: a 3-node Kafka cluster (KRaft, replication factor 3, min ISR 2) and a 6-node
             Redis Cluster, with the registry above (unless SCHEMA_REGISTRY_URL names another);
             provision the Kafka cluster, print KAFKA_BROKERS, SCHEMA_REGISTRY_URL and
             REDIS_CLUSTER_NODES (also in <STACK_DIR>/cluster.env)
  down       stop what up started from this stack folder, and only that (the clusters included)
  down --cluster
             stop only the Kafka cluster and the Redis Cluster
  status     what runs where, with pids and health, a row per cluster node while a cluster runs;
             exit 3 if something is down
  provision  create the topics and register the schemas on KAFKA_BROKERS and SCHEMA_REGISTRY_URL,
             or on the running local stack for what they leave unset (TOPIC_NAMESPACE and
             INTERNAL_PARTITIONS as the engine reads them)

Folder, ports, heaps and timeouts: STACK_DIR, STACK_KAFKA_PORT, STACK_KAFKA_CONTROLLER_PORT, STACK_KAFKA_SECURE_PORT, STACK_KAFKA_MTLS_PORT,
STACK_REGISTRY_PORT, STACK_REDIS_PORT, STACK_REDIS_CLUSTER_PORT, STACK_KAFKA_CLUSTER_PORT (clients on it and the next two ports,
controllers 10 above), STACK_KAFKA_HEAP, STACK_KAFKA_CLUSTER_HEAP, STACK_REGISTRY_HEAP, STACK_START_TIMEOUT_S,
STACK_APT_LOCK_TIMEOUT_S (README, "Local stack").`;

/** Commands that take --cluster. */
const CLUSTER_COMMANDS: readonly Command[] = ['up', 'down'];

/** What the command line asks for; strict, so a typo never runs a command it did not mean. */
export function parseCli(
  argv: readonly string[],
): { command: Command; cluster: boolean } | { help: true } | { error: string } {
  const parsed = tryParse(() =>
    parseArgs({
      args: [...argv],
      options: { help: { type: 'boolean', short: 'h' }, cluster: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    }),
  );
  // Node's text goes on about `--` for positionals; its first sentence is the point.
  if (parsed instanceof Error) return { error: parsed.message.split('. ')[0] ?? parsed.message };
  if (parsed.values.help) return { help: true };
  const [command, ...extra] = parsed.positionals;
  if (command === undefined) return { error: 'no command given' };
  if (!(COMMANDS as readonly string[]).includes(command)) return { error: `unknown command '${command}'` };
  if (extra.length > 0) return { error: `unexpected argument '${extra[0]}'` };
  const cluster = parsed.values.cluster === true;
  if (cluster && !CLUSTER_COMMANDS.includes(command as Command))
    return { error: `'--cluster' goes with ${CLUSTER_COMMANDS.join(' or ')}, not ${command}` };
  return { command: command as Command, cluster };
}

function tryParse<T>(parse: () => T): T | Error {
  try {
    return parse();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const cli = parseCli(argv);
  if ('help' in cli) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if ('error' in cli) {
    process.stderr.write(`[stack] ${cli.error}\n${USAGE}\n`);
    return 2;
  }
  switch (cli.command) {
    case 'up': {
      const t0 = Date.now();
      if (cli.cluster) {
        const { endpoints, registry } = await clusterUp(log);
        const { provisionAll } = await import('./provision.ts');
        const p = await provisionAll(endpoints, log);
        log(`registry  ${registry.state.padEnd(8)} ${registry.where}`);
        log(`provisioned ${p.topics} topics, ${p.subjects} schemas on the Kafka cluster`);
        log(`clusters ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        for (const [k, v] of Object.entries(endpoints)) process.stdout.write(`${k}=${v}\n`);
        return 0;
      }
      const { endpoints, services } = await stackUp(log);
      const { provisionAll } = await import('./provision.ts');
      const p = await provisionAll(endpoints, log);
      for (const s of services) log(`${s.name.padEnd(9)} ${s.state.padEnd(8)} ${s.where}`);
      log(`provisioned ${p.topics} topics, ${p.subjects} schemas`);
      log(`stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      for (const [k, v] of Object.entries(endpoints)) process.stdout.write(`${k}=${v}\n`);
      return 0;
    }
    case 'down':
      await (cli.cluster ? clusterDown(log) : stackDown(log));
      return 0;
    case 'status': {
      const rows = await stackStatus();
      // Wider only when cluster nodes' names (redis-17001) need it.
      const width = Math.max(9, ...rows.map((r) => r.name.length + 1));
      for (const r of rows) {
        const state = r.managed ? (r.pid ? (r.healthy ? 'up' : 'unhealthy') : 'down') : 'external';
        process.stdout.write(
          `${r.name.padEnd(width)} ${state.padEnd(10)} ${r.pid ? `pid ${r.pid}`.padEnd(11) : ''.padEnd(11)} ${r.where}\n`,
        );
      }
      return rows.every((r) => r.healthy) ? 0 : 3;
    }
    case 'provision': {
      const target = await provisionTarget();
      log(`provisioning Kafka ${target.KAFKA_BROKERS} and registry ${target.SCHEMA_REGISTRY_URL}`);
      const { provisionAll } = await import('./provision.ts');
      const p = await provisionAll(target, log);
      log(`provisioned ${p.topics} topics (${p.created} created), ${p.subjects} schemas`);
      return 0;
    }
  }
}

/**
 * Where `provision` works: KAFKA_BROKERS and SCHEMA_REGISTRY_URL when set (stackStatus reports them
 * as external), the local stack's servers for what they leave unset, if those run.
 */
async function provisionTarget(): Promise<{ KAFKA_BROKERS: string; SCHEMA_REGISTRY_URL: string }> {
  const rows = await stackStatus();
  const needed = rows.filter((r) => r.name === 'kafka' || r.name === 'registry');
  const down = needed.filter((r) => !r.healthy).map((r) => r.name);
  if (down.length > 0) {
    throw new StackProblem(
      `nothing to provision: the local ${down.join(' and ')} ${down.length > 1 ? 'are' : 'is'} not running.\n` +
        '  npm run stack:up starts the local stack (and provisions it), or set KAFKA_BROKERS and\n' +
        '  SCHEMA_REGISTRY_URL to provision an existing cluster.',
    );
  }
  const where = (name: string) => needed.find((r) => r.name === name)?.where ?? '';
  return { KAFKA_BROKERS: where('kafka'), SCHEMA_REGISTRY_URL: where('registry') };
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => process.exit(code), exitOnStackProblem('[stack]'));
}
