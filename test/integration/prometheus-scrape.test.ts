import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@assurance/core';
import type { EngineConfig } from '@assurance/engine';
import { createAdmin, createKafka, parseBrokers } from '@assurance/kafka';
import { topicNames } from '@assurance/schemas';
import { ApiProcess } from '../src/api-process.ts';
import { EngineProcess } from '../src/engine-process.ts';
import { EventProducer, envelope, isolatedConfig } from '../src/pipeline.ts';
import { missing, prerequisite } from '../src/prerequisite.ts';
import type { PromSample } from '../src/prometheus.ts';
import {
  ALERTS_FILE,
  DASHBOARD_FILE,
  PrometheusProcess,
  panelQueries,
  prometheusBinary,
  resolveVariables,
} from '../src/prometheus.ts';
import { freePort, pollUntil } from '../src/wait.ts';

/**
 * A real Prometheus (Debian's package; `.ci/run` installs it) scrapes a real engine process and a
 * real API process every second, with infra/prometheus/alerts.yml loaded: the series the dashboard
 * and the alerts rely on arrive with the labels they expect, every dashboard query is valid PromQL
 * and the main panels have data, the rules evaluate without error, and AssuranceEngineDown goes
 * pending when the engine stops. Every wait polls Prometheus's HTTP API against a deadline.
 */

const ENGINE_JOB = 'assurance-engine';
const API_JOB = 'assurance-api';
const TOKEN = 'prometheus-test-token-0123456789abcdef';
const binary = prometheusBinary();

/** Whether a process of ours still runs (signal 0 only checks). */
function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const INSTALL = 'apt-get install -y prometheus, or set PROMETHEUS_BIN';
const skip = prerequisite(binary !== undefined, 'the prometheus server', INSTALL);

describe('Prometheus scrapes the engine and the API', () => {
  // Skipped tests are still declared, one by one, so the summary counts each as skipped.
  const test = skip ? (name: string, _fn: () => Promise<void>) => it(name, { skip }, () => {}) : it;
  let config: EngineConfig;
  let engine: EngineProcess | undefined;
  let api: ApiProcess | undefined;
  let apiUrl = '';
  let enginePort = 0;
  let prom: PrometheusProcess | undefined;
  let producer: EventProducer | undefined;
  const logger = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'warn');
  const identities: string[] = [];

  /** One valid login for a fresh identity. */
  async function sendLogin(): Promise<void> {
    const identityId = `prom-${Date.now().toString(36)}-${identities.length}`;
    identities.push(identityId);
    await producer?.send(topicNames(config.TOPIC_NAMESPACE).login, identityId, {
      ...envelope(),
      identityId,
      outcome: 'success',
      authenticator: 'passkey_device_bound',
    });
  }

  async function readAssurance(identityId: string): Promise<number> {
    const res = await fetch(`${apiUrl}/v1/identities/${encodeURIComponent(identityId)}/assurance`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    await res.arrayBuffer();
    return res.status;
  }

  before(async () => {
    if (skip) return;
    assert.ok(binary, missing('the prometheus server', INSTALL));
    enginePort = await freePort();
    config = await isolatedConfig({ METRICS_PORT: String(enginePort), METRICS_HOST: '127.0.0.1' });
    engine = new EngineProcess(config);
    const started = engine;
    const engineUp = await pollUntil(
      async () => {
        // A process that could not start has exited: stop waiting at once.
        if (!alive(started.pid)) return 'exited';
        return (await fetch(`http://127.0.0.1:${enginePort}/healthz`)).ok ? 'up' : undefined;
      },
      60_000,
      () => `the engine's /healthz on port ${enginePort}: ${started.output.join('').slice(-2000)}`,
    );
    assert.equal(engineUp, 'up', `the engine did not start: ${started.output.join('').slice(-2000)}`);

    const apiPort = await freePort();
    api = await ApiProcess.start(config, {
      port: apiPort,
      tokens: `prometheus-test:${TOKEN}:decisions:read`,
    });
    apiUrl = api.base;

    prom = await PrometheusProcess.start(binary, {
      jobs: [
        { job: ENGINE_JOB, targets: [`127.0.0.1:${enginePort}`] },
        { job: API_JOB, targets: [`127.0.0.1:${apiPort}`] },
      ],
      ruleFiles: [ALERTS_FILE],
      interval: '1s',
    });
    producer = await EventProducer.start(config, logger);
  });

  after(async () => {
    if (skip) return;
    await prom?.stop();
    await api?.stop();
    await engine?.stop();
    await producer?.close();
    if (config) {
      const admin = await createAdmin(
        createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'test-cleanup', logger }),
      );
      await admin.deleteTopics(Object.values(topicNames(config.TOPIC_NAMESPACE))).catch(() => {});
      await admin.close();
    }
  });

  const p = () => {
    assert.ok(prom, 'prometheus started');
    return prom;
  };

  test('both targets are up', async () => {
    for (const job of [ENGINE_JOB, API_JOB]) {
      const [up] = await p().waitForQuery(`up{job="${job}"} == 1`, (s) => s.length === 1);
      assert.equal(up?.metric.job, job);
    }
  });

  test('input counted by topic and result, dead letters by error class, decisions by risk and tier', async () => {
    const n = 5;
    for (let i = 0; i < n; i++) await sendLogin();
    await producer?.sendRaw(topicNames(config.TOPIC_NAMESPACE).login, 'prom-broken', '{"eventId": ');

    const ok = await p().waitForQuery(
      `assurance_events_consumed_total{job="${ENGINE_JOB}", topic="identity.login.v1", result="ok"}`,
      (s) => (s[0]?.value ?? 0) >= n,
    );
    assert.equal(ok.length, 1, 'one series, whatever the identities');
    await p().waitForQuery(
      `assurance_events_consumed_total{job="${ENGINE_JOB}", topic="identity.login.v1", result="dead_letter"}`,
      (s) => (s[0]?.value ?? 0) >= 1,
    );
    await p().waitForQuery(
      `assurance_dead_letters_total{job="${ENGINE_JOB}", topic="identity.login.v1", error="invalid_json"}`,
      (s) => (s[0]?.value ?? 0) >= 1,
    );
    await p().waitForQuery(
      `assurance_events_decoded_total{job="${ENGINE_JOB}", topic="identity.login.v1", encoding="json"}`,
      (s) => (s[0]?.value ?? 0) >= n,
    );
    const risk = await p().waitForQuery(
      `sum(assurance_decisions_published_total{job="${ENGINE_JOB}"})`,
      (s) => (s[0]?.value ?? 0) >= n,
    );
    assert.ok((risk[0]?.value ?? 0) >= n);
    const tiers = await p().waitForQuery(
      `sum by (tier) (assurance_decision_tier_outcomes_total{job="${ENGINE_JOB}"})`,
      (s) => s.length === 4,
    );
    assert.deepEqual(tiers.map((s) => s.metric.tier).sort(), ['critical', 'high', 'low', 'medium']);
    await p().waitForQuery(
      `assurance_event_to_decision_seconds_count{job="${ENGINE_JOB}"}`,
      (s) => (s[0]?.value ?? 0) >= n,
    );
    const lag = await p().waitForQuery(
      `assurance_consumer_lag{job="${ENGINE_JOB}"}`,
      (s) => new Set(s.map((x) => x.metric.stage)).size === 2,
    );
    for (const s of lag) assert.match(s.metric.partition ?? '', /^\d+$/);
  });

  test('API requests counted and timed by route template and status', async () => {
    assert.equal(await readAssurance(identities[0] ?? 'prom-x'), 200);
    const [series] = await p().waitForQuery(
      `assurance_api_http_requests_total{job="${API_JOB}", route="/v1/identities/:id/assurance", status="200"}`,
      (s) => (s[0]?.value ?? 0) >= 1,
    );
    assert.equal(series?.metric.method, 'GET');
  });

  test('every dashboard query is valid PromQL, and the main panels have data', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Parameters<typeof panelQueries>[0];
    const queries = panelQueries(dashboard).map((q) => ({
      ...q,
      resolved: resolveVariables(q.expr, { engineJob: ENGINE_JOB, apiJob: API_JOB, rateInterval: '30s' }),
    }));
    for (const q of queries) {
      await assert.doesNotReject(p().query(q.resolved), `${q.panel} ${q.refId}: ${q.resolved}`);
    }
    // Panels that this traffic must fill (retries, degraded answers and dead letters need
    // failures; the dead-letter panel is covered above). Quantiles need observations on both sides
    // of a scrape, so traffic keeps flowing while we poll: a login and an API read per round.
    const mustHaveData = [
      'Engine targets up',
      'API targets up',
      'Event → decision p99 (5m)',
      'Consumer lag (all stages)',
      'Input throughput by topic and result',
      'Decoded events by encoding',
      'Event → decision latency p50 / p95 / p99',
      'Decisions by tier outcome',
      'Decisions by risk level',
      'Expiry and fan-out backlogs',
      'Consumer lag per stage and partition',
      'Redis script latency p99',
      'Engine process: CPU and event-loop lag',
      'HTTP p95 by route (API)',
      'HTTP requests by route and status (API)',
      'Engine lag as the API measures it',
    ];
    const finite = (s: PromSample[]) => s.some((x) => Number.isFinite(x.value));
    for (const title of mustHaveData) {
      const panelQs = queries.filter((q) => q.panel === title);
      assert.ok(panelQs.length > 0, `no panel ${title}`);
      for (const q of panelQs) {
        let last: PromSample[] = [];
        await pollUntil(
          async () => {
            await sendLogin();
            await readAssurance(identities.at(-1) ?? 'prom-x');
            last = await p().query(q.resolved);
            return finite(last) ? true : undefined;
          },
          30_000,
          () => `data in ${title} ${q.refId} (${q.resolved}); last: ${JSON.stringify(last)}`,
          500,
        );
      }
    }
    const redis = await p().query(
      resolveVariables(queries.find((q) => q.panel === 'Redis script latency p99')?.expr ?? '', {
        engineJob: ENGINE_JOB,
        apiJob: API_JOB,
        rateInterval: '30s',
      }),
    );
    for (const s of redis) assert.match(s.metric.script ?? '', /^[a-z-]+$/, 'script names, nothing else');
  });

  test('the alert rules load and evaluate without error; nothing about targets fires', async () => {
    const rules = await pollUntil(
      async () => {
        const r = await p().rules();
        return r.length > 0 && r.every((x) => x.health === 'ok') ? r : undefined;
      },
      30_000,
      () => 'every rule evaluated with health ok',
    );
    const names = rules.map((r) => r.name).sort();
    const inFile = [...readFileSync(ALERTS_FILE, 'utf8').matchAll(/^ {6}- alert: (\w+)$/gm)].map((m) => m[1]);
    assert.deepEqual(names, inFile.sort());
    assert.ok(rules.every((r) => r.type === 'alerting'));
    const active = (await p().alerts()).map((a) => a.labels.alertname);
    assert.ok(!active.includes('AssuranceEngineDown'), `active: ${active.join(', ')}`);
    assert.ok(!active.includes('AssuranceApiDown'), `active: ${active.join(', ')}`);
  });

  test('AssuranceEngineDown goes pending once the engine stops', async () => {
    assert.equal(await engine?.stop(), 0, 'the engine exits 0 on SIGTERM');
    await p().waitForQuery(`up{job="${ENGINE_JOB}"} == 0`, (s) => s.length === 1);
    const alert = await pollUntil(
      async () => (await p().alerts()).find((a) => a.labels.alertname === 'AssuranceEngineDown'),
      30_000,
      () => 'AssuranceEngineDown among the active alerts',
    );
    // `for: 2m` keeps it pending for the rest of this test.
    assert.equal(alert.state, 'pending');
    assert.equal(alert.labels.severity, 'critical');
    assert.equal(alert.labels.instance, `127.0.0.1:${enginePort}`);
  });
});
