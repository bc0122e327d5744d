/**
 * What `npm start` and `npm run serve` share: the local stack (or the services named by
 * KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL), one pipeline lock per consumer group, and the
 * engine and the HTTP API as supervised child processes.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { exitOnStackProblem, provisionAll, resolveLayout } from '@assurance/stack';
import { localApiToken, localEnvironment } from './local-env.ts';
import { acquirePipelineLock, Supervisor } from './supervisor.ts';

export interface LocalPipeline {
  /** The environment the children run with (stack endpoints, secret, tokens). */
  readonly env: NodeJS.ProcessEnv;
  readonly apiUrl: string;
  /** The development token, unless API_TOKENS came from the environment. */
  readonly token: string | undefined;
  readonly supervisor: Supervisor;
}

/**
 * Starts the pipeline, or explains what already runs for the same consumer groups and exits 1.
 * `defaults` are environment values the caller prefers unless the user set them.
 */
export async function startLocalPipeline(
  command: 'start' | 'serve',
  log: (m: string) => void,
  defaults: Record<string, string> = {},
): Promise<LocalPipeline> {
  const stackEnv = await localEnvironment(log).catch(exitOnStackProblem(`[${command}]`));
  const token = process.env.API_TOKENS ? undefined : localApiToken();
  const env: NodeJS.ProcessEnv = {
    // A local engine killed outright hands its partitions over after this long (the broker's minimum).
    CONSUMER_SESSION_TIMEOUT: '6s',
    ...defaults,
    ...process.env,
    ...stackEnv,
    // The development token holds every scope but ssf:stream (a receiver's own), so the README's
    // examples run with it alone.
    ...(token
      ? {
          API_TOKENS: `dev:${token}:decisions:read+signals:read+signals:write+signals:clear+ops:read+policy:read`,
        }
      : {}),
  };
  const apiUrl = `http://${env.API_HOST ?? '127.0.0.1'}:${env.API_PORT ?? '8080'}`;

  const group = env.ENGINE_GROUP_ID ?? 'assurance-engine';
  const scope = createHash('sha256')
    .update(`${env.KAFKA_BROKERS}|${env.TOPIC_NAMESPACE ?? ''}|${group}`)
    .digest('hex')
    .slice(0, 12);
  const script = `scripts/${command}.ts`;
  const owner = acquirePipelineLock(path.join(resolveLayout().dir, `pipeline-${scope}.lock`), {
    pid: process.pid,
    command: script,
    startedAt: new Date().toISOString(),
    api: apiUrl,
  });
  if (owner) {
    const which = owner.command.includes('serve') ? 'npm run serve' : 'npm start';
    log(
      `${which} already runs this pipeline (pid ${owner.pid}, since ${owner.startedAt.slice(11, 19)} UTC, API ${owner.api}).\n` +
        `  A second engine would join its consumer groups and split the work with it. Use the running one, or stop it first\n` +
        `  (Ctrl-C in its terminal, or kill ${owner.pid}); ENGINE_GROUP_ID and TOPIC_NAMESPACE give a separate pipeline.`,
    );
    process.exit(1);
  }

  // Topics first: the story's producer and watcher must not race the engine's own provisioning.
  await provisionAll(
    { KAFKA_BROKERS: env.KAFKA_BROKERS ?? '', SCHEMA_REGISTRY_URL: env.SCHEMA_REGISTRY_URL ?? '' },
    log,
    env,
  );

  const supervisor = new Supervisor(
    [
      { name: 'engine', main: 'services/engine/src/main.ts', env },
      { name: 'api', main: 'services/api/src/main.ts', env },
    ],
    log,
  );
  supervisor.start();
  return { env, apiUrl, token, supervisor };
}
