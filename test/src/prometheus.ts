import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, pollUntil } from './wait.ts';

/**
 * A real Prometheus server for tests (Debian's `prometheus` package, which `.ci/run` installs):
 * a temporary configuration and TSDB folder, a loopback port of its own, and helpers that poll its
 * HTTP API (`/api/v1/query`, `/api/v1/rules`, `/api/v1/alerts`) until a condition holds or a
 * deadline passes.
 */

/** Where the `prometheus` binary is: `PROMETHEUS_BIN` when set (and only it), else `/usr/bin/prometheus`, else PATH. */
export function prometheusBinary(): string | undefined {
  const candidates = process.env.PROMETHEUS_BIN
    ? [process.env.PROMETHEUS_BIN]
    : [
        '/usr/bin/prometheus',
        ...(process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'prometheus')),
      ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** One element of an instant vector as `/api/v1/query` returns it. */
export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A rule as `/api/v1/rules` returns it (the fields tests use). */
export interface PromRule {
  readonly name: string;
  readonly type: 'alerting' | 'recording';
  readonly health: string;
  readonly lastError?: string;
  readonly lastEvaluation: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** An active alert as `/api/v1/alerts` returns it. */
export interface PromAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly state: 'pending' | 'firing';
}

export interface ScrapeJob {
  readonly job: string;
  readonly targets: readonly string[];
}

export interface PrometheusOptions {
  readonly jobs: readonly ScrapeJob[];
  /** Absolute paths of rule files to load. */
  readonly ruleFiles?: readonly string[];
  /** Scrape and rule evaluation interval; 1s by default. */
  readonly interval?: string;
  /** How long to wait for `/-/ready`; 30 s by default. */
  readonly startTimeoutMs?: number;
}

interface ApiEnvelope<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

/** The prometheus server as a child process, on a temporary TSDB, removed by `stop()`. */
export class PrometheusProcess {
  readonly url: string;
  readonly output: string[] = [];
  readonly #child: ChildProcess;
  readonly #dir: string;

  private constructor(child: ChildProcess, url: string, dir: string) {
    this.#child = child;
    this.url = url;
    this.#dir = dir;
    const keep = (b: Buffer) => {
      this.output.push(b.toString());
      if (this.output.length > 200) this.output.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Writes a configuration with `jobs` and `ruleFiles`, starts the server, waits until ready. */
  static async start(binary: string, options: PrometheusOptions): Promise<PrometheusProcess> {
    const dir = mkdtempSync(path.join(tmpdir(), 'prometheus-test-'));
    const interval = options.interval ?? '1s';
    // JSON is YAML: no YAML writer needed, and every string is quoted.
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: options.jobs.map((j) => ({
        job_name: j.job,
        metrics_path: '/metrics',
        static_configs: [{ targets: j.targets }],
      })),
    };
    const configFile = path.join(dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const port = await freePort();
    const child = spawn(
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const prom = new PrometheusProcess(child, `http://127.0.0.1:${port}`, dir);
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`prometheus exited with ${String(code)}: ${prom.output.join('').slice(-2000)}`);
    });
    exited.catch(() => {});
    try {
      await Promise.race([
        exited,
        pollUntil(
          async () => ((await fetch(`${prom.url}/-/ready`)).ok ? true : undefined),
          options.startTimeoutMs ?? 30_000,
          () => `prometheus on ${prom.url} to be ready: ${prom.output.join('').slice(-1000)}`,
        ),
      ]);
    } catch (err) {
      await prom.stop();
      throw err;
    }
    return prom;
  }

  async #get<T>(apiPath: string, params: Record<string, string> = {}): Promise<T> {
    const qs = new URLSearchParams(params).toString();
    const res = await fetch(`${this.url}${apiPath}${qs ? `?${qs}` : ''}`);
    const body = (await res.json()) as ApiEnvelope<T>;
    if (body.status !== 'success') {
      throw new Error(`${apiPath} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    }
    return body.data;
  }

  /** Evaluates `expr` now; throws with Prometheus's message when it is not valid PromQL. */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.#get<{ resultType: string; result: unknown }>('/api/v1/query', { query: expr });
    if (data.resultType === 'scalar') {
      const [, v] = data.result as [number, string];
      return [{ metric: {}, value: Number(v) }];
    }
    if (data.resultType !== 'vector') throw new Error(`${expr}: unexpected result type ${data.resultType}`);
    return (data.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((r) => ({
      metric: r.metric,
      value: Number(r.value[1]),
    }));
  }

  /**
   * Polls `expr` until `accept` says the result is what the test waits for, and returns it; on
   * timeout the error names the expression and the last result.
   */
  async waitForQuery(
    expr: string,
    accept: (samples: PromSample[]) => boolean,
    timeoutMs = 30_000,
  ): Promise<PromSample[]> {
    let last: PromSample[] = [];
    return pollUntil(
      async () => {
        last = await this.query(expr);
        return accept(last) ? last : undefined;
      },
      timeoutMs,
      () => `${expr}; last result: ${JSON.stringify(last)}`,
    );
  }

  /** Every rule of every loaded group. */
  async rules(): Promise<PromRule[]> {
    const data = await this.#get<{ groups: Array<{ rules: PromRule[] }> }>('/api/v1/rules');
    return data.groups.flatMap((g) => g.rules);
  }

  /** Alerts pending or firing now. */
  async alerts(): Promise<PromAlert[]> {
    return (await this.#get<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts;
  }

  /** SIGTERM (then SIGKILL after 10 s), and removes the temporary folder. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const gone = once(this.#child, 'exit');
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** The Grafana dashboard of infra/grafana, and the alert rules of infra/prometheus. */
export const DASHBOARD_FILE = path.resolve(
  import.meta.dirname,
  '../../infra/grafana/assurance-dashboard.json',
);
export const ALERTS_FILE = path.resolve(import.meta.dirname, '../../infra/prometheus/alerts.yml');

/** One PromQL query of one dashboard panel. */
export interface PanelQuery {
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

interface DashboardPanel {
  readonly type: string;
  readonly title: string;
  readonly targets?: ReadonlyArray<{ readonly refId: string; readonly expr: string }>;
  readonly panels?: readonly DashboardPanel[];
}

/** Every query of every panel of `dashboard` (rows included), in panel order. */
export function panelQueries(dashboard: { readonly panels: readonly DashboardPanel[] }): PanelQuery[] {
  const all = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return all.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr })));
}

/**
 * Replaces the dashboard's template variables as Grafana would before sending a query:
 * `$__rate_interval`, `$__interval`, the job and instance variables.
 */
export function resolveVariables(
  expr: string,
  vars: { engineJob: string; apiJob: string; instance?: string; rateInterval?: string },
): string {
  return expr
    .replaceAll('$__rate_interval', vars.rateInterval ?? '1m')
    .replaceAll('$__interval', vars.rateInterval ?? '1m')
    .replaceAll('$engine_job', vars.engineJob)
    .replaceAll('$api_job', vars.apiJob)
    .replaceAll('$instance', vars.instance ?? '.*');
}
