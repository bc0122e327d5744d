import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateSigningKey } from '@assurance/schemas';
import type { StackEndpoints } from '@assurance/stack';
import { resolveLayout, stackUp } from '@assurance/stack';

/**
 * The environment `npm start`, `npm run serve` and `npm test` run the engine with: the stack's
 * endpoints (started if needed, or taken from KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL) and
 * a channel-hash secret and a decision signing key kept in the stack folder, so hashes and
 * signatures stay stable across restarts. A real deployment sets CHANNEL_HASH_SECRET and
 * DECISION_SIGNING_KEY itself.
 */
export async function localEnvironment(log: (m: string) => void): Promise<
  Omit<StackEndpoints, 'REDIS_URL'> & {
    REDIS_URL?: string;
    REDIS_CLUSTER_NODES?: string;
    CHANNEL_HASH_SECRET: string;
    DECISION_SIGNING_KEY: string;
  }
> {
  const t0 = Date.now();
  const { endpoints, services } = await stackUp(log);
  for (const s of services) log(`${s.name.padEnd(9)} ${s.state.padEnd(8)} ${s.where}`);
  log(`stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // A Redis Cluster named by REDIS_CLUSTER_NODES stands in for the Redis server (not started).
  const nodes = process.env.REDIS_CLUSTER_NODES;
  const { REDIS_URL, ...rest } = endpoints;
  return {
    ...rest,
    ...(nodes ? { REDIS_CLUSTER_NODES: nodes } : { REDIS_URL }),
    CHANNEL_HASH_SECRET: process.env.CHANNEL_HASH_SECRET ?? localSecret(),
    DECISION_SIGNING_KEY: process.env.DECISION_SIGNING_KEY ?? localSigningKey(),
  };
}

/** The local engine's decision signing key (a private JWK); its public half verifies the demo's decisions. */
export function localSigningKey(): string {
  return kept('decision-signing-key.jwk', () => JSON.stringify(generateSigningKey()));
}

function localSecret(): string {
  return kept('channel-hash-secret', () => randomBytes(32).toString('hex'));
}

/**
 * The HTTP API's development bearer token, kept in the stack folder next to the secret so it
 * survives restarts. A real deployment sets API_TOKENS itself.
 */
export function localApiToken(): string {
  return kept('api-dev-token', () => randomBytes(32).toString('base64url'));
}

/** A value generated once and kept (mode 0600) in the stack folder. */
function kept(name: string, generate: () => string): string {
  const layout = resolveLayout();
  const file = path.join(layout.dir, name);
  if (!existsSync(file)) {
    mkdirSync(layout.dir, { recursive: true });
    writeFileSync(file, generate(), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}
