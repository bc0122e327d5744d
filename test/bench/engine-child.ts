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
import { EngineConfigSchema } from '@assurance/engine';

const REPO = join(import.meta.dirname, '..', '..');

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

/**
 * The parsed config back as the environment the engine's own schema parses. Durations were parsed
 * to milliseconds; a field is a duration when its own schema accepts "1ms".
 */
export function configEnv(config: EngineConfig): Record<string, string> {
  const shape = EngineConfigSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined) continue;
    const duration = typeof v === 'number' && shape[k]?.safeParse('1ms').success === true;
    env[k] = duration ? `${v}ms` : String(v);
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

/** Cumulative bucket counts of a histogram, by upper bound (the samples whose labels contain `match`). */
function buckets(text: string, name: string, match: Record<string, string> = {}): Map<number, number> {
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\}\\s+(\\S+)`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    if (!Object.entries(match).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    const le = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]);
    out.set(le, (out.get(le) ?? 0) + Number(m[2]));
  }
  return out;
}

/**
 * Quantiles of what a Prometheus histogram observed between two scrapes, interpolated linearly
 * inside buckets (as histogram_quantile does). Undefined when nothing was observed.
 */
export function histogramQuantiles(
  before: string,
  after: string,
  name: string,
  qs: readonly number[],
  match: Record<string, string> = {},
): { count: number; values: number[] } | undefined {
  const a = buckets(before, name, match);
  const b = buckets(after, name, match);
  const bounds = [...b.keys()].sort((x, y) => x - y);
  const cum = bounds.map((le) => (b.get(le) ?? 0) - (a.get(le) ?? 0));
  const count = cum.at(-1) ?? 0;
  if (count <= 0) return undefined;
  const values = qs.map((q) => {
    const rank = q * count;
    const i = cum.findIndex((c) => c >= rank);
    const hi = bounds[i] as number;
    const lo = i > 0 ? (bounds[i - 1] as number) : 0;
    if (!Number.isFinite(hi)) return lo;
    const below = i > 0 ? (cum[i - 1] as number) : 0;
    const inBucket = (cum[i] as number) - below;
    return inBucket > 0 ? lo + ((hi - lo) * (rank - below)) / inBucket : hi;
  });
  return { count, values };
}
