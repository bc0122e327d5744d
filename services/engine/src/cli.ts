/**
 * The operator CLI:
 *   cli.ts policy validate [policy.yaml ...]   check a policy file (path and reason per problem)
 *   cli.ts policy test [--policy f] [cases ...] run table-driven cases against a policy
 *   cli.ts explain <identityId> [--json]        the live state in Redis and why it decides as it does
 * explain reads REDIS_URL, REDIS_PREFIX and POLICY_FILE from the environment.
 */
import { parseConfig } from '@assurance/core';
import { loadPolicyFile } from '@assurance/policy';
import { runCli } from '@assurance/policy/cli';
import { defineScripts, keySpace, SignalStore } from '@assurance/redis';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { explainIdentity, renderExplanation } from './explain.ts';

const ExplainConfig = z.object({
  REDIS_URL: z.url('REDIS_URL must be a URL, e.g. redis://127.0.0.1:16379'),
  REDIS_PREFIX: z.string().default('ra:'),
  POLICY_FILE: z.string().optional(),
});

const USAGE = 'usage: assurance policy validate|test ... | assurance explain <identityId> [--json]';

export async function main(
  args: readonly string[],
  out: (text: string) => void = (t) => {
    process.stdout.write(t);
  },
): Promise<number> {
  const [command, ...rest] = args;
  if (command === 'policy') return runCli(rest);
  if (command === 'explain') {
    const identityId = rest.find((a) => !a.startsWith('--'));
    if (!identityId) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    const config = parseConfig(ExplainConfig);
    const redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    defineScripts(redis);
    await redis.connect();
    try {
      const store = new SignalStore(redis, keySpace(config.REDIS_PREFIX), {
        dedupeWindowMs: 0,
        stateTtlSeconds: 1,
      });
      const e = await explainIdentity(store, loadPolicyFile(config.POLICY_FILE), identityId);
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
