/**
 * The engine under test, as a child process running `services/engine/src/main.ts`: the same entry
 * point production runs, on its own event loop and with its own CPU account (the benchmark's
 * producer and consumers would otherwise share and blur both).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineConfig } from '@assurance/engine';

const REPO = join(import.meta.dirname, '..', '..');
const DURATIONS = new Set(['DEDUPE_WINDOW', 'STATE_TTL', 'SWEEP_INTERVAL', 'SWEEP_LEASE', 'RETRY_BACKOFF']);

/** A free loopback port for the child's /metrics. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  srv.close();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** The parsed config back as the environment the engine's own schema parses. */
export function configEnv(config: EngineConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined) continue;
    env[k] = DURATIONS.has(k) ? `${v}ms` : String(v);
  }
  return env;
}

/** Prometheus text → sum of a metric's samples whose labels contain every `match` pair. */
export function metricSum(text: string, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = m[2] ?? '';
    if (Object.entries(match).every(([k, v]) => labels.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

export interface EngineChild {
  readonly pid: number;
  readonly logFile: string;
  /** Prometheus text from the child's /metrics. */
  metrics(): Promise<string>;
  /** Rejects if the child exits before `stop`. */
  readonly exited: Promise<never>;
  /** SIGTERM (the engine finishes its batches, flushes, closes Redis), SIGKILL after 30 s. */
  stop(): Promise<number | null>;
}

export async function startEngineChild(args: {
  config: EngineConfig;
  metricsPort: number;
  logFile: string;
  cpuProfileDir?: string;
}): Promise<EngineChild> {
  const log = openSync(args.logFile, 'a');
  const nodeArgs = args.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${args.cpuProfileDir}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, 'services/engine/src/main.ts'], {
    cwd: REPO,
    env: {
      ...process.env,
      ...configEnv(args.config),
      METRICS_PORT: String(args.metricsPort),
      METRICS_HOST: '127.0.0.1',
    },
    stdio: ['ignore', log, log],
  });
  let stopping = false;
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => {
      if (!stopping)
        reject(new Error(`engine exited unexpectedly (code ${code}, signal ${signal}); see ${args.logFile}`));
    });
  });
  exited.catch(() => {});
  const base = `http://127.0.0.1:${args.metricsPort}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) await exited;
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`engine not healthy within 120 s; see ${args.logFile}`);
    await sleep(200);
  }
  return {
    pid: child.pid as number,
    logFile: args.logFile,
    exited,
    async metrics() {
      const r = await fetch(`${base}/metrics`);
      return r.text();
    },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      stopping = true;
      const done = once(child, 'exit') as Promise<[number | null]>;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const [code] = await done;
      clearTimeout(t);
      return code;
    },
  };
}
