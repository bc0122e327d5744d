/**
 * The operator CLI:
 *   cli.ts policy validate [policy.yaml ...]   check a policy file (path and reason per problem)
 *   cli.ts policy test [--policy f] [cases ...] run table-driven cases against a policy
 *   cli.ts explain <identityId> [--json] [--policy f]  the live state in Redis and why it decides as it
 *                                               does; with --policy, what that candidate would require
 *   cli.ts rebuild --yes                       delete the store under REDIS_PREFIX: engines rebuild
 *                                              it from Kafka (docs/state.md, rebuild)
 *   cli.ts keys generate                       a new decision signing key (private JWK, JSON)
 *   cli.ts keys public                         the public key of DECISION_SIGNING_KEY, for readers
 * explain and rebuild read REDIS_URL (or REDIS_CLUSTER_NODES), REDIS_PREFIX and POLICY_FILE from the environment.
 */
import { checkRedisTarget, PipelineEnv, parseConfig } from '@assurance/core';
import { loadPolicyFile } from '@assurance/policy';
import { runCli } from '@assurance/policy/cli';
import { keySpace, MetaStore, openRedis, StateReader } from '@assurance/redis';
import { generateSigningKey, parseSigningKey } from '@assurance/schemas';
import { explainIdentity, renderExplanation } from './explain.ts';

/**
 * `keys generate` prints a new private signing key for DECISION_SIGNING_KEY; `keys public` prints
 * the public half of DECISION_SIGNING_KEY, which readers of the decisions topic are given.
 */
function keys(sub: string | undefined, out: (text: string) => void): number {
  if (sub === 'generate') {
    out(`${JSON.stringify(generateSigningKey())}\n`);
    return 0;
  }
  if (sub === 'public') {
    const key = process.env.DECISION_SIGNING_KEY;
    if (!key) {
      process.stderr.write('keys public reads DECISION_SIGNING_KEY, which is not set\n');
      return 2;
    }
    out(`${JSON.stringify(parseSigningKey(key).publicJwk)}\n`);
    return 0;
  }
  process.stderr.write('usage: assurance keys generate | assurance keys public\n');
  return 2;
}

const ExplainConfig = PipelineEnv.pick({
  REDIS_URL: true,
  REDIS_CLUSTER_NODES: true,
  REDIS_CLUSTER_NAT_MAP: true,
  REDIS_PREFIX: true,
  POLICY_FILE: true,
}).superRefine((c, ctx) => checkRedisTarget(c, ctx), { when: () => true });

const USAGE =
  'usage: assurance policy validate|test ... | assurance explain <identityId> [--json] [--policy candidate.yaml] | assurance rebuild --yes | assurance keys generate|public | assurance ssf ... (Shared Signals streams)';

export async function main(
  args: readonly string[],
  out: (text: string) => void = (t) => {
    process.stdout.write(t);
  },
): Promise<number> {
  const [command, ...rest] = args;
  if (command === 'policy') return runCli(rest);
  if (command === 'keys') return keys(rest[0], out);
  if (command === 'rebuild') {
    if (!rest.includes('--yes')) {
      process.stderr.write(
        'rebuild deletes every key under REDIS_PREFIX; running engines then hold, rebuild the store from the decisions and input topics, and go on (answers are degraded meanwhile). Add --yes to do it.\n',
      );
      return 2;
    }
    const config = parseConfig(ExplainConfig);
    const redis = openRedis(config, { kind: 'tool' });
    await redis.connect();
    try {
      const deleted = await new MetaStore(redis, keySpace(config.REDIS_PREFIX)).wipe();
      out(
        `deleted ${deleted} keys under "${config.REDIS_PREFIX}". Engines now rebuild the store from Kafka; \`assurance explain <id>\` shows "store: ... complete" once they are done.\n`,
      );
      return 0;
    } finally {
      await redis.quit();
    }
  }
  if (command === 'explain') {
    const at = rest.indexOf('--policy');
    const candidateFile = at >= 0 ? rest[at + 1] : undefined;
    if (at >= 0 && (candidateFile === undefined || candidateFile.startsWith('--'))) {
      process.stderr.write(`--policy needs a policy file\n${USAGE}\n`);
      return 2;
    }
    const identityId = rest.find((a, i) => !a.startsWith('--') && (at < 0 || i !== at + 1));
    if (!identityId) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    const config = parseConfig(ExplainConfig);
    const redis = openRedis(config, { kind: 'tool' });
    await redis.connect();
    try {
      const keys = keySpace(config.REDIS_PREFIX);
      const store = new StateReader(redis, keys);
      const e = await explainIdentity(
        store,
        new MetaStore(redis, keys),
        loadPolicyFile(config.POLICY_FILE),
        identityId,
        new Date(),
        candidateFile === undefined ? undefined : loadPolicyFile(candidateFile),
      );
      out(`${rest.includes('--json') ? JSON.stringify(e, null, 2) : renderExplanation(e)}\n`);
      return 0;
    } finally {
      await redis.quit();
    }
  }
  process.stderr.write(`${USAGE}\n`);
  return command === 'help' || command === '--help' ? 0 : 2;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
