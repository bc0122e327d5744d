/**
 * The read path, measured: the HTTP API as a child process (services/api/src/main.ts, its own CPU
 * account) under autocannon at a fixed rate, and the client library's topic view looked up in
 * process. Identities are the run's own, decided by the engine in the throughput phases.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAssuranceClient } from '@assurance/client';
import autocannon from 'autocannon';
import { TEST_PUBLIC_KEY } from '../src/pipeline.ts';
import { percentile } from './report.ts';

const REPO = join(import.meta.dirname, '..', '..');

export interface ApiChild {
  readonly pid: number;
  readonly base: string;
  stop(): Promise<void>;
}

/** The API on its own port, reading the engine's store and topics (`env`: the engine's config). */
export async function startApiChild(args: {
  env: Record<string, string>;
  port: number;
  token: string;
  logFile: string;
  /** Write a CPU profile of the API here (on exit). */
  cpuProfileDir?: string;
}): Promise<ApiChild> {
  const log = openSync(args.logFile, 'a');
  const nodeArgs = args.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${args.cpuProfileDir}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, 'services/api/src/main.ts'], {
    cwd: REPO,
    env: {
      ...process.env,
      ...args.env,
      API_HOST: '127.0.0.1',
      API_PORT: String(args.port),
      API_TOKENS: `bench:${args.token}:decisions:read`,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', log, log],
  });
  const base = `http://127.0.0.1:${args.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`API exited (code ${child.exitCode}); see ${args.logFile}`);
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`API not ready within 60 s; see ${args.logFile}`);
    await sleep(200);
  }
  return {
    pid: child.pid as number,
    base,
    async stop() {
      if (child.exitCode !== null) return;
      const done = once(child, 'exit');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(t);
    },
  };
}

export interface LoadResult {
  readonly name: string;
  readonly offeredRate: number;
  readonly requests: number;
  readonly seconds: number;
  /** Response times measured per response (µs precision, no correction). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** autocannon's own p99, corrected for coordinated omission (whole ms). */
  readonly correctedP99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
  /** Answers marked degraded (fail-closed): fast, but not the answer being measured. */
  readonly degraded: number;
}

/** One endpoint at `rate` requests/s for `seconds`, over `connections` keep-alive connections. */
export async function loadEndpoint(args: {
  name: string;
  base: string;
  token: string;
  rate: number;
  seconds: number;
  connections: number;
  request: () => { method: 'GET' | 'POST'; path: string; body?: string };
}): Promise<LoadResult> {
  const times: number[] = [];
  let degraded = 0;
  let finished: (r: autocannon.Result) => void = () => {};
  let failed: (e: unknown) => void = () => {};
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finished = resolve;
    failed = reject;
  });
  const instance = autocannon(
    {
      url: args.base,
      connections: args.connections,
      duration: args.seconds,
      overallRate: args.rate,
      headers: { authorization: `Bearer ${args.token}`, 'content-type': 'application/json' },
      requests: [
        {
          setupRequest: (req) => {
            const r = args.request();
            return {
              ...req,
              method: r.method,
              path: r.path,
              ...(r.body === undefined ? {} : { body: r.body }),
            };
          },
          onResponse: (_status, body) => {
            if (body.includes('"degraded":true')) degraded++;
          },
        },
      ],
    },
    (err, result) => (err ? failed(err) : finished(result)),
  );
  instance.on('response', (_client, _status, _bytes, responseTime) => {
    times.push(responseTime);
  });
  const result = await done;
  const sorted = Float64Array.from(times).sort();
  return {
    name: args.name,
    offeredRate: args.rate,
    requests: result.requests.total,
    seconds: result.duration,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? Number.NaN,
    correctedP99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    degraded,
  };
}

export interface ViewResult {
  readonly decisions: number;
  readonly loadMs: number;
  /** From the start until every held decision's signature was checked (in the background). */
  readonly verifiedMs: number;
  readonly bytesPerIdentity: number;
  readonly lookups: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly degraded: number;
}

/**
 * The client library's topic view: how long it takes to read the decisions topic, what it costs
 * per identity in heap (measured around a forced GC when `--expose-gc` is on), and how long a
 * lookup (`requirementFor`, as an app calls it) takes.
 */
export async function topicViewLookups(args: {
  brokers: string;
  namespace: string;
  engineGroupId: string;
  identities: readonly string[];
  lookups: number;
  action: string;
}): Promise<ViewResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const client = createAssuranceClient({
    mode: 'topic',
    decisionKeys: [TEST_PUBLIC_KEY],
    brokers: args.brokers,
    namespace: args.namespace,
    engineGroupId: args.engineGroupId,
  });
  try {
    await client.ready({ timeoutMs: 600_000 });
    const loadMs = performance.now() - started;
    // Steady state: lookups of decisions already checked (a first lookup checks its own, ~70 µs).
    while ((client.health().unverified ?? 0) > 0) await sleep(20);
    const verifiedMs = performance.now() - started;
    gc?.();
    const heapAfter = process.memoryUsage().heapUsed;
    const times = new Float64Array(args.lookups);
    let degraded = 0;
    for (let i = 0; i < args.lookups; i++) {
      const id = args.identities[(i * 7919) % args.identities.length] as string;
      const t0 = performance.now();
      const answer = await client.requirementFor(id, args.action);
      times[i] = (performance.now() - t0) * 1000;
      if (answer.degraded) degraded++;
    }
    times.sort();
    return {
      decisions: args.identities.length,
      loadMs,
      verifiedMs,
      bytesPerIdentity: (heapAfter - heapBefore) / args.identities.length,
      lookups: args.lookups,
      p50Us: percentile(times, 50),
      p99Us: percentile(times, 99),
      degraded,
    };
  } finally {
    await client.close();
  }
}
