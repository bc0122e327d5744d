/**
 * `npm run policy -- backtest --candidate candidate.yaml`: what a policy change would have done to
 * the identities the cluster still has input for.
 *
 * The retained input of TOPIC_NAMESPACE's six input topics (within `--since`/`--until`, and for at
 * most `--sample` identities) is copied into two scratch namespaces. Two engines replay it in this
 * process, one with the live policy (POLICY_FILE) and one with the candidate. Both use a frozen
 * clock (`--at`, now by default), scratch Redis prefixes and scratch groups, so the live state and
 * topics are never touched. Each identity's final decision under the two policies is then compared
 * tier by tier (packages/policy compare.ts).
 *
 * The output is a transition matrix per tier, the blast radius, the top reasons and sample
 * identities. `--report` writes all of it as JSON, every identity included. `--fail-on looser`
 * exits 1 when any tier of any identity gets looser or changes route, which opens some way in;
 * `--fail-on stricter` exits 1 on stricter. With the same input and `--at`, two runs give the same
 * report. The scratch topics and keys are deleted at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger, parseDuration } from '@assurance/core';
import { EngineConfigSchema, startEngine } from '@assurance/engine';
import {
  createAdmin,
  createKafka,
  createProducer,
  type InboundMessage,
  kafkaSecurity,
  type OutboundMessage,
  parseBrokers,
  readTopicToEnd,
} from '@assurance/kafka';
import {
  compareTiers,
  type Direction,
  expandDecision,
  loadPolicyFile,
  type TierTransition,
} from '@assurance/policy';
import { keySpace, MetaStore, openRedis } from '@assurance/redis';
import {
  type Decision,
  type DecisionV2,
  generateSigningKey,
  INPUT_ROLES,
  TIERS,
  topicNames,
} from '@assurance/schemas';

const USAGE = `usage: npm run policy -- backtest --candidate candidate.yaml [--since 7d|ISO] [--until ISO] [--sample N]
       [--at ISO] [--report report.json] [--fail-on looser|stricter]
Reads KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL (or REDIS_CLUSTER_NODES), TOPIC_NAMESPACE and POLICY_FILE.`;

export interface BacktestReport {
  readonly at: string;
  readonly live: { readonly version: string; readonly digest: string };
  readonly candidate: { readonly version: string; readonly digest: string };
  readonly input: { readonly events: number; readonly identities: number };
  /** Per tier: `from -> to` outcome counts, and counts by direction. */
  readonly tiers: Record<
    string,
    { readonly matrix: Record<string, number>; readonly directions: Record<Direction, number> }
  >;
  /** Identities with at least one tier not `same`, by their strictest-first summary direction. */
  readonly blastRadius: {
    readonly affected: number;
    readonly stricter: number;
    readonly looser: number;
    readonly routeChange: number;
  };
  readonly topReasons: { readonly added: Array<[string, number]>; readonly removed: Array<[string, number]> };
  readonly samples: Record<'stricter' | 'looser' | 'route_change', string[]>;
  readonly identities: Record<string, Record<string, { from: string; to: string; direction: Direction }>>;
}

const log = (m: string) => process.stderr.write(`[backtest] ${m}\n`);

function timeArg(v: string | undefined, nowMs: number): number | undefined {
  if (v === undefined) return undefined;
  const d = parseDuration(v);
  if (d !== undefined) return nowMs - d;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`not a duration or an instant: "${v}"`);
  return t;
}

/** The identity an input message is keyed by, when it is (channel-keyed events reach many). */
function identityOf(role: string, key: string): string | undefined {
  if (role === 'login' || role === 'device' || role === 'channelBinding') return key;
  if (role === 'compromiseSignal' && key.startsWith('identity:')) return key.slice('identity:'.length);
  return undefined;
}

export async function backtest(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      candidate: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      sample: { type: 'string' },
      at: { type: 'string' },
      report: { type: 'string' },
      'fail-on': { type: 'string' },
    },
  });
  if (!values.candidate) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const failOn = values['fail-on'];
  if (failOn !== undefined && failOn !== 'looser' && failOn !== 'stricter') {
    process.stderr.write(`--fail-on is looser or stricter\n${USAGE}\n`);
    return 2;
  }
  const atMs = values.at === undefined ? Date.now() : Date.parse(values.at);
  if (Number.isNaN(atMs)) throw new Error(`--at is not an instant: "${values.at}"`);
  const sinceMs = timeArg(values.since, atMs);
  const untilMs = timeArg(values.until, atMs);
  const sample = values.sample === undefined ? undefined : Number(values.sample);
  if (sample !== undefined && !(Number.isInteger(sample) && sample > 0))
    throw new Error('--sample is a whole number');

  const live = loadPolicyFile(env.POLICY_FILE);
  const candidate = loadPolicyFile(values.candidate);
  const source = topicNames(env.TOPIC_NAMESPACE ?? '');
  const logger = createLogger('backtest', 'error');
  const kafka = createKafka({
    brokers: parseBrokers(env.KAFKA_BROKERS ?? ''),
    clientId: 'assurance-backtest',
    logger,
    ...kafkaSecurity(env as Parameters<typeof kafkaSecurity>[0]),
  });

  // 1. The retained input, filtered, in each partition's order.
  const messages: Array<{ role: string; m: InboundMessage }> = [];
  const sampled = new Set<string>();
  for (const role of INPUT_ROLES) {
    await readTopicToEnd(kafka, source[role], (batch) => {
      for (const m of batch) {
        if (sinceMs !== undefined && m.timestampMs < sinceMs) continue;
        if (untilMs !== undefined && m.timestampMs > untilMs) continue;
        const id = m.key ? identityOf(role, m.key.toString('utf8')) : undefined;
        if (id !== undefined && sample !== undefined && !sampled.has(id)) {
          if (sampled.size >= sample) continue;
          sampled.add(id);
        }
        messages.push({ role, m });
      }
    });
  }
  log(`${messages.length} retained input events${sample ? `, at most ${sample} identities` : ''}`);

  // 2. Two scratch replays: the live policy and the candidate, at the frozen instant.
  const run = randomBytes(4).toString('hex');
  const scratch = (which: 'l' | 'c') => `bt${run}${which}`;
  const signing = generateSigningKey();
  const configOf = (which: 'l' | 'c') =>
    EngineConfigSchema.parse({
      KAFKA_BROKERS: env.KAFKA_BROKERS,
      SCHEMA_REGISTRY_URL: env.SCHEMA_REGISTRY_URL,
      ...(env.REDIS_CLUSTER_NODES
        ? { REDIS_CLUSTER_NODES: env.REDIS_CLUSTER_NODES, REDIS_CLUSTER_NAT_MAP: env.REDIS_CLUSTER_NAT_MAP }
        : { REDIS_URL: env.REDIS_URL }),
      CHANNEL_HASH_SECRET: randomBytes(24).toString('base64url'),
      DECISION_SIGNING_KEY: JSON.stringify(signing),
      TOPIC_NAMESPACE: scratch(which),
      ENGINE_GROUP_ID: scratch(which),
      REDIS_PREFIX: `${scratch(which)}:`,
      INTERNAL_PARTITIONS: '3',
      ENGINE_STAGES: 'router,decider',
      METRICS_PORT: '0',
      LOG_LEVEL: 'error',
      // The cluster's own security settings, as the live engines have them.
      ...Object.fromEntries(Object.entries(env).filter(([k]) => /^KAFKA_(SASL|TLS)/.test(k))),
    });
  const configs = { l: configOf('l'), c: configOf('c') };
  const clock = () => atMs;
  const engines = {
    l: await startEngine(configs.l, logger, { policy: live, clock }),
    c: await startEngine(configs.c, logger, { policy: candidate, clock }),
  };
  const admin = await createAdmin(kafka);
  const producer = await createProducer(kafka);
  try {
    for (const which of ['l', 'c'] as const) {
      const target = topicNames(configs[which].TOPIC_NAMESPACE);
      const out: OutboundMessage[] = messages.map(({ role, m }) => ({
        topic: target[role as keyof typeof target],
        key: m.key,
        value: m.value,
        headers: m.headers,
      }));
      for (let i = 0; i < out.length; i += 500) await producer.send(out.slice(i, i + 500));
    }
    log('replaying with both policies');

    // 3. Drained: every stage has read everything, and no fan-out is still queued, twice running.
    const drained = async (which: 'l' | 'c') => {
      const t = topicNames(configs[which].TOPIC_NAMESPACE);
      for (const role of INPUT_ROLES)
        if ((await admin.lag(`${configs[which].ENGINE_GROUP_ID}.router`, t[role])).some((p) => p.lag > 0))
          return false;
      if (
        (await admin.lag(`${configs[which].ENGINE_GROUP_ID}.decider`, t.identityEvents)).some(
          (p) => p.lag > 0,
        )
      )
        return false;
      const keys = keySpace(configs[which].REDIS_PREFIX);
      for (const q of keys.fanoutQueues) if ((await engines[which].redis.zcard(q)) > 0) return false;
      return true;
    };
    let calm = 0;
    const deadline = Date.now() + 10 * 60_000;
    while (calm < 2) {
      if (Date.now() > deadline) throw new Error('the replays did not finish within 10 minutes');
      calm = (await drained('l')) && (await drained('c')) ? calm + 1 : 0;
      await new Promise((r) => setTimeout(r, 500));
    }

    // 4. Each identity's last decision under each policy.
    const finals = { l: new Map<string, Decision>(), c: new Map<string, Decision>() };
    for (const which of ['l', 'c'] as const) {
      const policy = which === 'l' ? live : candidate;
      await readTopicToEnd(kafka, topicNames(configs[which].TOPIC_NAMESPACE).decisions, (batch) => {
        for (const m of batch) {
          if (!m.value) continue;
          const d = expandDecision(policy, JSON.parse(m.value.toString('utf8')) as Decision | DecisionV2);
          const prev = finals[which].get(d.identityId);
          if (!prev || d.sequence > prev.sequence) finals[which].set(d.identityId, d);
        }
      });
    }
    const report = summarize(finals.l, finals.c, {
      at: new Date(atMs).toISOString(),
      live: { version: live.version, digest: live.digest },
      candidate: { version: candidate.version, digest: candidate.digest },
      events: messages.length,
    });
    print(report);
    if (values.report) writeFileSync(values.report, `${JSON.stringify(report, null, 2)}\n`);
    const gate =
      failOn === 'looser'
        ? report.blastRadius.looser + report.blastRadius.routeChange
        : failOn === 'stricter'
          ? report.blastRadius.stricter
          : 0;
    if (gate > 0) log(`--fail-on ${failOn}: ${gate} identities`);
    return gate > 0 ? 1 : 0;
  } finally {
    await Promise.allSettled([engines.l.stop(), engines.c.stop()]);
    for (const which of ['l', 'c'] as const) {
      await admin.deleteTopics(Object.values(topicNames(configs[which].TOPIC_NAMESPACE))).catch(() => {});
      const redis = openRedis(configs[which], { kind: 'tool' });
      await redis.connect().catch(() => {});
      await new MetaStore(redis, keySpace(configs[which].REDIS_PREFIX)).wipe().catch(() => 0);
      redis.disconnect();
    }
    await Promise.allSettled([producer.close(), admin.close()]);
  }
}

/** The report: a pure function of the two sets of final decisions (sorted, so two runs agree). */
export function summarize(
  live: ReadonlyMap<string, Decision>,
  candidate: ReadonlyMap<string, Decision>,
  meta: { at: string; live: BacktestReport['live']; candidate: BacktestReport['candidate']; events: number },
): BacktestReport {
  const ids = [...new Set([...live.keys(), ...candidate.keys()])].sort();
  const tiers = Object.fromEntries(
    TIERS.map((t) => [
      t,
      {
        matrix: {} as Record<string, number>,
        directions: { same: 0, stricter: 0, looser: 0, route_change: 0 },
      },
    ]),
  );
  const added = new Map<string, number>();
  const removed = new Map<string, number>();
  const identities: BacktestReport['identities'] = {};
  const blast = { affected: 0, stricter: 0, looser: 0, routeChange: 0 };
  const samples: BacktestReport['samples'] = { stricter: [], looser: [], route_change: [] };
  for (const id of ids) {
    const a = live.get(id);
    const b = candidate.get(id);
    if (!a || !b) continue;
    const transitions: TierTransition[] = compareTiers(a.tiers, b.tiers);
    identities[id] = Object.fromEntries(
      transitions.map((t) => [t.tier, { from: t.from, to: t.to, direction: t.direction }]),
    );
    const dirs = new Set(transitions.map((t) => t.direction));
    for (const t of transitions) {
      const entry = tiers[t.tier] as {
        matrix: Record<string, number>;
        directions: Record<Direction, number>;
      };
      const cell = `${t.from} -> ${t.to}`;
      entry.matrix[cell] = (entry.matrix[cell] ?? 0) + 1;
      entry.directions[t.direction]++;
      for (const r of t.reasonsAdded) added.set(r, (added.get(r) ?? 0) + 1);
      for (const r of t.reasonsRemoved) removed.set(r, (removed.get(r) ?? 0) + 1);
    }
    if (dirs.size === 1 && dirs.has('same')) continue;
    blast.affected++;
    // Looser anywhere is what matters most to a reviewer: it names the identity first.
    const summary: 'looser' | 'route_change' | 'stricter' = dirs.has('looser')
      ? 'looser'
      : dirs.has('route_change')
        ? 'route_change'
        : 'stricter';
    if (summary === 'looser') blast.looser++;
    else if (summary === 'route_change') blast.routeChange++;
    else blast.stricter++;
    if (samples[summary].length < 5) samples[summary].push(id);
  }
  const top = (m: Map<string, number>) =>
    [...m].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).slice(0, 10) as Array<[string, number]>;
  return {
    at: meta.at,
    live: meta.live,
    candidate: meta.candidate,
    input: { events: meta.events, identities: Object.keys(identities).length },
    tiers,
    blastRadius: blast,
    topReasons: { added: top(added), removed: top(removed) },
    samples,
    identities,
  };
}

function print(r: BacktestReport): void {
  const out: string[] = [];
  out.push(`backtest at ${r.at}: live ${r.live.version} vs candidate ${r.candidate.version}`);
  out.push(`  ${r.input.events} input events, ${r.input.identities} identities decided`);
  for (const [tier, t] of Object.entries(r.tiers)) {
    const d = t.directions;
    out.push(
      `  ${tier.padEnd(8)} same ${d.same}, stricter ${d.stricter}, looser ${d.looser}, route change ${d.route_change}`,
    );
    for (const [cell, n] of Object.entries(t.matrix).sort()) out.push(`    ${cell.padEnd(22)} ${n}`);
  }
  const b = r.blastRadius;
  out.push(
    `  blast radius: ${b.affected} identities (${b.stricter} stricter, ${b.looser} looser, ${b.routeChange} route change)`,
  );
  if (r.topReasons.added.length)
    out.push(`  reasons added: ${r.topReasons.added.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  if (r.topReasons.removed.length)
    out.push(`  reasons removed: ${r.topReasons.removed.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  for (const [k, ids] of Object.entries(r.samples)) if (ids.length) out.push(`  ${k}: ${ids.join(', ')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Keeps a digest of the report's substance handy for determinism checks. */
export function reportDigest(r: BacktestReport): string {
  return createHash('sha256').update(JSON.stringify(r)).digest('hex');
}

if (import.meta.main) {
  backtest(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`[backtest] ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
