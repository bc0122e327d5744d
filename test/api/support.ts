import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ApiConfig, ApiRuntime, StartOptions } from '@assurance/api';
import { ApiConfigSchema, startApi } from '@assurance/api';
import { createLogger } from '@assurance/core';
import type { EngineConfig } from '@assurance/engine';
import { freePort } from '../src/wait.ts';

export { freePort };

/**
 * Test support for the HTTP API (test/integration/api-*.test.ts): an API wired like main.ts on the
 * same namespace, groups and Redis prefix as a test pipeline, listening on a free loopback port;
 * a small fetch wrapper; and a private redis-server that tests may stop and start.
 */

/** Tokens the test APIs accept: one per scope, and one (`both`) with every scope. */
export const TOKENS = {
  reader: 'reader-token-0123456789abcdefghijkl',
  socReader: 'socreader-token-0123456789abcdefghij',
  writer: 'writer-token-0123456789abcdefghijkl',
  clearer: 'clearer-token-0123456789abcdefghijk',
  ops: 'ops-token-0123456789abcdefghijklmnopq',
  acme: 'acme-token-0123456789abcdefghijklmnop',
  both: 'both-token-0123456789abcdefghijklmnop',
  receiver: 'receiver-token-0123456789abcdefghijk',
  policyOwner: 'policy-owner-token-0123456789abcdef',
  unknown: 'unknown-token-0123456789abcdefghijkl',
} as const;

export const API_TOKENS = [
  `reader:${TOKENS.reader}:decisions:read`,
  `socreader:${TOKENS.socReader}:signals:read`,
  `writer:${TOKENS.writer}:signals:write`,
  `clearer:${TOKENS.clearer}:signals:write+signals:clear`,
  `ops:${TOKENS.ops}:ops:read`,
  `receiver:${TOKENS.receiver}:ssf:stream`,
  `policyowner:${TOKENS.policyOwner}:decisions:read+policy:read`,
  `acme:${TOKENS.acme}:decisions:read+signals:read+signals:write@acme`,
  `both:${TOKENS.both}:decisions:read+signals:read+signals:write+signals:clear+ops:read`,
].join(',');

export interface TestApi {
  readonly config: ApiConfig;
  readonly runtime: ApiRuntime;
  readonly baseUrl: string;
  call(method: string, urlPath: string, opts?: CallOptions): Promise<CallResult>;
  stop(): Promise<void>;
}

export interface CallOptions {
  /** A token, or null for no Authorization header. Default: the token with both scopes. */
  readonly token?: string | null;
  readonly json?: unknown;
  readonly rawBody?: string;
  readonly headers?: Record<string, string>;
}

export interface CallResult {
  readonly status: number;
  readonly contentType: string;
  readonly headers: Headers;
  readonly body: unknown;
  readonly text: string;
}

/** Starts the API for a pipeline's engine config (same namespace, groups, Redis prefix). */
export async function startTestApi(
  engine: Pick<
    EngineConfig,
    | 'KAFKA_BROKERS'
    | 'SCHEMA_REGISTRY_URL'
    | 'REDIS_URL'
    | 'REDIS_PREFIX'
    | 'TOPIC_NAMESPACE'
    | 'ENGINE_GROUP_ID'
    | 'CHANNEL_HASH_SECRET'
  >,
  overrides: Record<string, string> = {},
  opts: StartOptions = {},
): Promise<TestApi> {
  const config = ApiConfigSchema.parse({
    KAFKA_BROKERS: engine.KAFKA_BROKERS,
    SCHEMA_REGISTRY_URL: engine.SCHEMA_REGISTRY_URL,
    REDIS_URL: engine.REDIS_URL,
    REDIS_PREFIX: engine.REDIS_PREFIX,
    TOPIC_NAMESPACE: engine.TOPIC_NAMESPACE,
    ENGINE_GROUP_ID: engine.ENGINE_GROUP_ID,
    CHANNEL_HASH_SECRET: engine.CHANNEL_HASH_SECRET,
    API_TOKENS,
    API_PORT: '0',
    LAG_REFRESH_INTERVAL: '500ms',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...overrides,
  });
  const runtime = await startApi(config, createLogger('test-api', config.LOG_LEVEL), opts);
  const address = await runtime.app.listen({ host: '127.0.0.1', port: 0 });
  return {
    config,
    runtime,
    baseUrl: address,
    call: (method, urlPath, opts = {}) => call(address, method, urlPath, opts),
    stop: () => runtime.stop(),
  };
}

async function call(
  baseUrl: string,
  method: string,
  urlPath: string,
  opts: CallOptions,
): Promise<CallResult> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? TOKENS.both : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  } else if (opts.rawBody !== undefined) {
    body = opts.rawBody;
  }
  const res = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  let parsed: unknown = text;
  if (/json/.test(contentType)) parsed = JSON.parse(text);
  return { status: res.status, contentType, headers: res.headers, body: parsed, text };
}

/** A redis-server of our own, in a temp dir, that a test may stop and start again on the same port. */
export class PrivateRedis {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | undefined;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** A server on a free port, started unless `started` is false (a Redis that is down from the outset). */
  static async create(started = true): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort(), mkdtempSync(path.join(tmpdir(), 'api-redis-')));
    if (started) await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server and resolves once it accepts connections. */
  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.#child = child;
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) =>
        reject(new Error(`redis-server exited with ${code}: ${seen.slice(-500)}`)),
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        seen += chunk.toString('utf8');
        if (seen.includes('Ready to accept connections')) resolve();
      });
    });
    child.stdout?.resume();
  }

  /** Kills the server (SIGKILL: an outage, not a clean shutdown) and waits for it to be gone. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
