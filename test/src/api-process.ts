import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import type { EngineConfig } from '@assurance/engine';
import { REPO_ROOT } from '@assurance/stack';
import { pollUntil } from './wait.ts';

type EngineSide = Pick<
  EngineConfig,
  | 'KAFKA_BROKERS'
  | 'SCHEMA_REGISTRY_URL'
  | 'REDIS_URL'
  | 'REDIS_CLUSTER_NODES'
  | 'REDIS_CLUSTER_NAT_MAP'
  | 'REDIS_PREFIX'
  | 'TOPIC_NAMESPACE'
  | 'ENGINE_GROUP_ID'
  | 'CHANNEL_HASH_SECRET'
>;

/**
 * The HTTP API as a real process (services/api/src/main.ts) for an engine's config, when a test
 * needs its own output (its logs) or its own /metrics: listening on `port`, with `tokens`
 * (API_TOKENS) and `env` on top. `start` resolves once /healthz answers.
 */
export class ApiProcess {
  readonly output: string[] = [];
  readonly base: string;
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess, port: number, keep: number) {
    this.#child = child;
    this.base = `http://127.0.0.1:${port}`;
    const collect = (b: Buffer) => {
      this.output.push(b.toString());
      if (this.output.length > keep) this.output.shift();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
  }

  static async start(
    engine: EngineSide,
    opts: { port: number; tokens: string; env?: Record<string, string>; keep?: number },
  ): Promise<ApiProcess> {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'services/api/src/main.ts')], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        KAFKA_BROKERS: engine.KAFKA_BROKERS,
        SCHEMA_REGISTRY_URL: engine.SCHEMA_REGISTRY_URL,
        // The engine's store, one server or a cluster: only what is set (an unset value would read
        // as the text "undefined").
        ...Object.fromEntries(
          (['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_CLUSTER_NAT_MAP'] as const)
            .filter((k) => engine[k] !== undefined)
            .map((k) => [k, engine[k]]),
        ),
        REDIS_PREFIX: engine.REDIS_PREFIX,
        TOPIC_NAMESPACE: engine.TOPIC_NAMESPACE,
        ENGINE_GROUP_ID: engine.ENGINE_GROUP_ID,
        CHANNEL_HASH_SECRET: engine.CHANNEL_HASH_SECRET,
        API_TOKENS: opts.tokens,
        API_HOST: '127.0.0.1',
        API_PORT: String(opts.port),
        LOG_LEVEL: 'warn',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const api = new ApiProcess(child, opts.port, opts.keep ?? 200);
    const up = await pollUntil(
      async () => {
        // A process that could not start has exited: stop waiting at once.
        if (child.exitCode !== null) return 'exited';
        return (await fetch(`${api.base}/healthz`)).ok ? 'up' : undefined;
      },
      60_000,
      () => `the API's /healthz on ${api.base}: ${api.output.join('').slice(-2000)}`,
    );
    if (up !== 'up') throw new Error(`the API did not start: ${api.output.join('').slice(-2000)}`);
    return api;
  }

  /** SIGTERM, and wait for the process to be gone. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const gone = once(this.#child, 'exit');
    this.#child.kill('SIGTERM');
    await gone;
  }
}
