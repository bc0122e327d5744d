import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createApiMetrics } from '@assurance/api';
import { createEngineMetrics } from '@assurance/engine';
import { ALERTS_FILE, DASHBOARD_FILE, panelQueries } from '../src/prometheus.ts';

/**
 * The Grafana dashboard (infra/grafana) and the alert rules (infra/prometheus/alerts.yml) against
 * the metrics the services define: every metric name and label they use must exist in
 * services/engine/src/metrics.ts or services/api/src/metrics.ts, so a rename there fails here
 * instead of leaving an empty panel or an alert that can never fire. No services needed; the
 * queries are evaluated by a real Prometheus in prometheus-scrape.test.ts.
 */

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Array<{ refId: string; expr: string; datasource?: { type: string; uid: string } }>;
  panels?: Panel[];
}
interface Dashboard {
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: unknown }> };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const alertsText = readFileSync(ALERTS_FILE, 'utf8');
const runbooks = readFileSync(path.join(path.dirname(ALERTS_FILE), 'README.md'), 'utf8');

/** Every metric the two services define, with its type and label names. */
const defined = new Map<string, { type: string; labels: readonly string[] }>();
for (const registry of [createEngineMetrics().registry, createApiMetrics().registry]) {
  for (const m of registry.getMetricsAsArray()) {
    // prom-client keeps each metric's label names on the metric object itself.
    const labels = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    defined.set(m.name, { type: String(m.type), labels });
  }
}

const SUFFIXES: Record<string, readonly string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['_sum', '_count'],
};

/** The definition behind a series name (`x_bucket` is histogram `x`), or undefined. */
function definitionOf(series: string): { type: string; labels: readonly string[] } | undefined {
  const exact = defined.get(series);
  if (exact) return exact;
  for (const [name, d] of defined) {
    if ((SUFFIXES[d.type] ?? []).some((s) => series === `${name}${s}`)) return d;
  }
  return undefined;
}

const metricNames = (text: string) => [...new Set(text.match(/\bassurance_[a-z0-9_]+\b/g) ?? [])];

/** Label names an expression groups by or matches on. */
function labelNamesIn(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const l of (m[1] ?? '').split(',')) if (l.trim()) names.add(l.trim());
  }
  for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const mm of (m[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (mm[1]) names.add(mm[1]);
    }
  }
  return [...names];
}

/** Checks that `expr` only uses defined metrics, and labels that those metrics (or the target) have. */
function checkExpr(where: string, expr: string): void {
  const names = metricNames(expr);
  const allowed = new Set(['job', 'instance']);
  for (const n of names) {
    const d = definitionOf(n);
    assert.ok(d, `${where}: ${n} is defined by neither services/engine nor services/api metrics.ts`);
    for (const l of d.labels) allowed.add(l);
    if (n.endsWith('_bucket')) allowed.add('le');
  }
  for (const l of labelNamesIn(expr)) {
    assert.ok(allowed.has(l), `${where}: label ${l} is not a label of ${names.join(', ') || 'up'}`);
  }
}

/** Each `- alert:` block of alerts.yml as text, by alert name. */
const alertBlocks = new Map(
  alertsText
    .split(/^ {6}- alert: /m)
    .slice(1)
    .map((block) => [block.slice(0, block.indexOf('\n')).trim(), block] as const),
);

describe('Grafana dashboard', () => {
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const queries = panelQueries(dashboard);

  test('is a schemaVersion 39+ dashboard whose data source is the DS_PROMETHEUS input and variable', () => {
    assert.ok(dashboard.schemaVersion >= 39, `schemaVersion ${dashboard.schemaVersion}`);
    assert.ok(dashboard.uid && dashboard.title);
    assert.deepEqual(
      dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]),
      [['DS_PROMETHEUS', 'datasource', 'prometheus']],
    );
    const dsVar = dashboard.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
    assert.equal(dsVar?.type, 'datasource');
    assert.equal(dsVar?.query, 'prometheus');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's placeholder, not a template literal
    const uid = '${DS_PROMETHEUS}';
    for (const p of panels.filter((x) => x.type !== 'row')) {
      assert.deepEqual(p.datasource, { type: 'prometheus', uid }, p.title);
      assert.ok((p.targets ?? []).length > 0, `${p.title}: no query`);
      for (const t of p.targets ?? []) assert.deepEqual(t.datasource, p.datasource, `${p.title} ${t.refId}`);
    }
  });

  test('panels have unique ids and tile the 24-column grid without overlapping', () => {
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids.join(',')}`);
    const cells = new Map<string, string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${p.title}: ${JSON.stringify(p.gridPos)}`);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const other = cells.get(`${i},${j}`);
          assert.equal(other, undefined, `${p.title} overlaps ${other}`);
          cells.set(`${i},${j}`, p.title);
        }
      }
    }
  });

  test('has the panels the operators asked for', () => {
    const required: Array<[RegExp, RegExp]> = [
      [/^Input throughput by topic and result$/, /assurance_events_consumed_total/],
      [/failures and dead letters by class/, /assurance_dead_letters_total/],
      [/^Event → decision latency p50 \/ p95 \/ p99$/, /assurance_event_to_decision_seconds_bucket/],
      [/^Consumer lag per stage and partition$/, /assurance_consumer_lag/],
      [/^Decisions by tier outcome$/, /assurance_decision_tier_outcomes_total/],
      [/^Decisions by risk level$/, /assurance_decisions_published_total/],
      [/^Expiry and fan-out backlogs$/, /assurance_expiry_backlog/],
      [/^Processing retries$/, /assurance_processing_retries_total/],
      [/^Redis script latency p99$/, /assurance_redis_script_seconds_bucket/],
      [/^Degraded answers by reason \(API\)$/, /assurance_api_degraded_answers_total/],
      [/^HTTP p95 by route \(API\)$/, /assurance_api_http_request_duration_seconds_bucket/],
    ];
    for (const [title, metric] of required) {
      const p = panels.find((x) => title.test(x.title));
      assert.ok(p, `no panel titled ${title}`);
      assert.ok(
        (p.targets ?? []).some((t) => metric.test(t.expr)),
        `${p.title}: no query on ${metric}`,
      );
    }
  });

  test('quantiles are histogram_quantile over the rate of buckets, grouped by le', () => {
    const quantiles = queries.filter((q) => q.expr.includes('histogram_quantile'));
    assert.ok(quantiles.length >= 6);
    for (const q of quantiles) {
      assert.match(
        q.expr,
        /^histogram_quantile\(0\.\d+, sum by \(le(, [a-z]+)*\) \(rate\(assurance_[a-z_]+_bucket\{[^}]*\}\[(\$__rate_interval|\d+m)\]\)\)\)$/,
        `${q.panel} ${q.refId}`,
      );
    }
    const latency = queries.filter((q) => q.panel.startsWith('Event → decision latency'));
    assert.deepEqual(
      latency.map((q) => q.expr.slice(0, 'histogram_quantile(0.95'.length)),
      ['histogram_quantile(0.5,', 'histogram_quantile(0.95', 'histogram_quantile(0.99'],
    );
  });

  test('engine panels select the engine job and instances, API panels the API job', () => {
    for (const q of queries) {
      const api = /assurance_api_/.test(q.expr) || /\bAPI\b/.test(q.panel);
      const selectors = q.expr.match(/\{[^}]*\}/g) ?? [];
      assert.ok(selectors.length > 0, `${q.panel}: no selector`);
      for (const s of selectors) {
        assert.ok(
          api ? s.includes('job="$api_job"') : s.includes('job="$engine_job", instance=~"$instance"'),
          `${q.panel} ${q.refId}: ${s}`,
        );
      }
    }
  });

  for (const q of panelQueries(dashboard)) {
    test(`${q.panel} (${q.refId}) uses only defined metrics and labels`, () => {
      checkExpr(`${q.panel} ${q.refId}`, q.expr);
    });
  }
});

describe('alert rules', () => {
  test('cover what the operators asked for', () => {
    for (const name of [
      'AssuranceEngineDown',
      'AssuranceConsumerLagHigh',
      'AssuranceDeadLetterRateHigh',
      'AssuranceDegradedAnswers',
      'AssuranceExpiryBacklogHigh',
      'AssuranceExpiryBacklogGrowing',
      'AssuranceDecisionLatencyHigh',
      'AssuranceProcessingRetriesSustained',
    ]) {
      assert.ok(alertBlocks.has(name), `no alert ${name}`);
    }
  });

  for (const [name, block] of alertBlocks) {
    test(`${name}: for, severity, annotations, a runbook section, defined metrics and labels`, () => {
      assert.match(block, /^ {8}for: \d+[smh]$/m, 'for:');
      assert.match(block, /^ {10}severity: (critical|warning)$/m, 'severity');
      for (const a of ['summary', 'description']) assert.match(block, new RegExp(`^ {10}${a}: `, 'm'), a);
      const anchor = name.toLowerCase();
      assert.match(block, new RegExp(`^ {10}runbook: "infra/prometheus/README\\.md#${anchor}"$`, 'm'));
      assert.match(runbooks, new RegExp(`^### ${name}$`, 'm'), `README.md has no "### ${name}" section`);
      const expr = /^ {8}expr: (?:>-\n)?([\s\S]*?)^ {8}for:/m.exec(block)?.[1];
      assert.ok(expr, 'expr');
      checkExpr(name, expr.replace(/\s+/g, ' '));
    });
  }
});
