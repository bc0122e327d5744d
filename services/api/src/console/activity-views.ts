import type { EngineHealth } from '@assurance/kafka';
import { OUTCOMES, RISK_LEVELS, TIERS } from '@assurance/schemas';
import type { ConsoleActivity, MinuteBucket, TimelineEntry } from './activity.ts';
import { type Html, html } from './html.ts';

const words = (s: string) => s.replaceAll('_', ' ');

/** The feed's state in a sentence, or undefined when it is live. */
function feedNotice(source: ConsoleActivity | undefined): Html | undefined {
  const feed = source?.feed;
  if (!source) return html`<p class="meta">This console reads no activity (no audit feed configured).</p>`;
  if (!feed)
    return html`<p class="degraded" role="status">The audit feed is not running${source.error ? html`: ${source.error}` : ''}. Retrying.</p>`;
  if (feed.state === 'loading')
    return html`<p class="meta" role="status">Reading back recent audit records…</p>`;
  if (feed.state === 'interrupted')
    return html`<p class="degraded" role="status">The audit feed is interrupted (Kafka unreachable?): what follows may be behind.</p>`;
  return undefined;
}

/** What moved from one decision to the next, in words. */
function changesOf(entry: TimelineEntry, before: TimelineEntry | undefined): Html[] {
  if (!before) return [html`<li>First decision seen for this identity</li>`];
  const out: Html[] = [];
  if (entry.riskLevel !== before.riskLevel)
    out.push(html`<li>Risk ${before.riskLevel} → <strong>${entry.riskLevel}</strong></li>`);
  for (const t of TIERS) {
    if (entry.outcomes[t] !== before.outcomes[t])
      out.push(
        html`<li>${t}: ${words(before.outcomes[t])} → <strong>${words(entry.outcomes[t])}</strong></li>`,
      );
  }
  const added = entry.signals.filter((s) => !before.signals.includes(s));
  const gone = before.signals.filter((s) => !entry.signals.includes(s));
  if (added.length) out.push(html`<li>Signals raised: ${added.join(', ')}</li>`);
  if (gone.length) out.push(html`<li>Signals gone: ${gone.join(', ')}</li>`);
  if (entry.policyVersion !== before.policyVersion)
    out.push(html`<li>Policy ${before.policyVersion} → ${entry.policyVersion}</li>`);
  if (out.length === 0) out.push(html`<li>No change in risk, outcomes or signals</li>`);
  return out;
}

/** The identity's decisions from the audit topic, newest first. */
export function timelineView(source: ConsoleActivity | undefined, entries: readonly TimelineEntry[]): Html {
  const notice = feedNotice(source);
  const oldest = source?.feed?.view.oldest;
  return html`<h2 id="timeline-title">Timeline</h2>
${notice ?? ''}
${
  entries.length === 0
    ? html`<p>No decision in the audit records read${oldest === undefined ? '' : html` (since ${new Date(oldest).toISOString()})`}.</p>`
    : html`<ol class="timeline" aria-labelledby="timeline-title">${entries.map((e, i) => {
        const t = e.trigger;
        return html`<li class="risk-${e.riskLevel}">
  <p><strong>Decision ${e.sequence}</strong> <span class="meta">${e.recordedAt} · policy ${e.policyVersion} · risk ${e.riskLevel}</span></p>
  <ul class="changes">${changesOf(e, entries[i + 1])}</ul>
  <p class="meta">Triggered by <code>${t.topic}</code> event <code>${t.eventId}</code> of ${t.occurredAt}${t.actor ? html`, by <strong>${t.actor}</strong>` : ''}</p>
  ${
    e.reasons.length
      ? html`<details><summary>Reasons (${e.reasons.length})</summary><ul>${e.reasons.map(
          (r) => html`<li><code>${r.code}</code> ${r.admin}</li>`,
        )}</ul></details>`
      : ''
  }
</li>`;
      })}</ol>`
}`;
}

/** A stacked bar per minute (decisions by risk), drawn on the server: no script, no library. */
function riskChart(minutes: readonly MinuteBucket[]): Html {
  const W = 600;
  const H = 120;
  const max = Math.max(1, ...minutes.map((m) => m.decisions));
  const bw = W / minutes.length;
  const bars = minutes.flatMap((m, i) => {
    let y = H;
    return RISK_LEVELS.flatMap((r) => {
      const n = m.risk[r] ?? 0;
      if (n === 0) return [];
      const h = (n / max) * H;
      y -= h;
      return [
        html`<rect class="risk-${r}" x="${(i * bw).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}"><title>${new Date(m.minute * 60_000).toISOString().slice(11, 16)}: ${n} ${r}</title></rect>`,
      ];
    });
  });
  const total = minutes.reduce((a, m) => a + m.decisions, 0);
  return html`<figure>
<svg viewBox="0 0 ${W} ${H}" width="100%" height="${H}" role="img" aria-labelledby="risk-chart-title">
<title id="risk-chart-title">Decisions per minute by risk, last ${minutes.length} minutes: ${total} in all, at most ${max} in a minute</title>
${bars}
</svg>
<figcaption>${RISK_LEVELS.map((r) => html`<span class="legend risk-${r}">${r}</span> `)} · at most ${max} a minute</figcaption>
</figure>`;
}

function sum(minutes: readonly MinuteBucket[], pick: (m: MinuteBucket) => Record<string, number>) {
  const out: Record<string, number> = {};
  for (const m of minutes) for (const [k, v] of Object.entries(pick(m))) out[k] = (out[k] ?? 0) + v;
  return out;
}

function engineView(h: EngineHealth): Html {
  if (h.state === 'unknown')
    return html`<p class="degraded" role="status">Engine state unknown${h.error ? html`: ${h.error}` : ''}. Every answer fails closed until it is known.</p>`;
  return html`<dl class="engine">
  <dt>State</dt><dd class="engine-${h.state}"><strong>${h.state}</strong>${h.state === 'ok' ? '' : ' (answers fail closed)'}</dd>
  <dt>Messages behind</dt><dd>${Object.entries(h.lagByStage)
    .map(([stage, n]) => `${stage} ${n}`)
    .join(' · ')}</dd>
  <dt>Consumers</dt><dd>${Object.entries(h.members)
    .map(([stage, n]) => `${stage} ${n}`)
    .join(' · ')}</dd>
  <dt>Measured</dt><dd>${(h.ageMs / 1000).toFixed(1)} s ago</dd>
</dl>
${
  h.stalled.length
    ? html`<table><caption>Stalled partitions</caption><thead><tr><th scope="col">Stage</th><th scope="col">Topic</th><th scope="col">Partition</th><th scope="col">Waiting</th><th scope="col">For</th></tr></thead>
<tbody>${h.stalled.map((s) => html`<tr><td>${s.stage}</td><td>${s.topic}</td><td>${s.partition}</td><td>${s.waiting}</td><td>${(s.waitingMs / 1000).toFixed(0)} s</td></tr>`)}</tbody></table>`
    : ''
}`;
}

/** The overview: engine state, then the last hour's decisions and dead letters. */
export function overviewView(source: ConsoleActivity | undefined, health: EngineHealth): Html {
  const minutes = source?.feed?.view.minutes() ?? [];
  const outcomes = TIERS.map((t) => ({ tier: t, counts: sum(minutes, (m) => m.outcomes[t] ?? {}) }));
  const dead = Object.entries(sum(minutes, (m) => m.deadLetters)).sort((a, b) => b[1] - a[1]);
  return html`<h1>Overview</h1>
<h2>Engine</h2>
${engineView(health)}
<h2>Decisions, last ${minutes.length || 60} minutes</h2>
${feedNotice(source) ?? ''}
${minutes.length ? riskChart(minutes) : ''}
<table><caption>Decisions by tier outcome</caption>
<thead><tr><th scope="col">Tier</th>${OUTCOMES.map((o) => html`<th scope="col">${words(o)}</th>`)}</tr></thead>
<tbody>${outcomes.map(
    (o) =>
      html`<tr><th scope="row">${o.tier}</th>${OUTCOMES.map((x) => html`<td>${o.counts[x] ?? 0}</td>`)}</tr>`,
  )}</tbody></table>
<h2>Dead letters, last ${minutes.length || 60} minutes</h2>
${
  dead.length === 0
    ? html`<p>None.</p>`
    : html`<table><caption class="sr-only">Dead letters by error class</caption><thead><tr><th scope="col">Error class</th><th scope="col">Messages</th></tr></thead>
<tbody>${dead.map(([cls, n]) => html`<tr><td><code>${cls}</code></td><td>${n}</td></tr>`)}</tbody></table>`
}
<p class="meta">From the audit and dead-letter topics as this API process reads them, and its own measure of the engine's lag. Longer ranges: the Grafana dashboard (infra/grafana).</p>`;
}
