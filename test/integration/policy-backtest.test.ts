/**
 * The policy backtest on the real stack (`npm run policy -- backtest`): a pipeline's retained
 * input replayed through the live policy and a candidate at a frozen instant, in scratch
 * namespaces. A stricter candidate changes exactly the identities it should; a looser one fails
 * `--fail-on looser`; two runs give the same report; and the report's outcomes are those of an
 * engine that then runs the candidate live on the same input.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compareTiers } from '@assurance/policy';
import { REPO_ROOT } from '@assurance/stack';
import type { BacktestReport } from '../../scripts/backtest.ts';
import { envelope, startPipeline } from '../src/pipeline.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let dir: string;
const files = { stricter: '', looser: '' };
const run = Date.now().toString(36);
const ids = { swapped: `bt-swapped-${run}`, quiet: `bt-quiet-${run}`, leaked: `bt-leaked-${run}` };
const phones = {
  swapped: `+4915133${String(Date.now() % 100_000).padStart(5, '0')}`,
  quiet: `+4915122${String(Date.now() % 100_000).padStart(5, '0')}`,
};
const AT = new Date(Date.now() + 60_000).toISOString();
/** What is sent, so a second pipeline can be fed the same. */
const sent: Array<(q: Pipeline) => Promise<void>> = [];

async function feed(q: Pipeline): Promise<void> {
  for (const send of sent) await send(q);
}

before(async () => {
  p = await startPipeline();
  dir = mkdtempSync(path.join(tmpdir(), 'backtest-'));
  const live = readFileSync(path.join(REPO_ROOT, 'packages/policy/policies/default.yaml'), 'utf8');
  // Stricter for SIM-swapped identities only: phishing-resistant from medium instead of high.
  const stricter = live.replace(
    '      excludeRecoveryBound: [sms_code, helpdesk_verified_callback]\n      requirePhishingResistant: high\n      risk: elevated',
    '      excludeRecoveryBound: [sms_code, helpdesk_verified_callback]\n      requirePhishingResistant: medium\n      risk: elevated',
  );
  // Looser for leaked credentials: no phishing resistance demanded for high.
  const looser = live.replace(
    '      stepUp: low\n      requirePhishingResistant: high\n      risk: high',
    '      stepUp: low\n      risk: high',
  );
  assert.ok(stricter !== live && looser !== live);
  files.stricter = path.join(dir, 'stricter.yaml');
  files.looser = path.join(dir, 'looser.yaml');
  writeFileSync(files.stricter, stricter.replace(/^version: .*$/m, 'version: 1.2.0-stricter'));
  writeFileSync(files.looser, looser.replace(/^version: .*$/m, 'version: 1.2.0-looser'));

  for (const [who, phone] of [
    ['swapped', phones.swapped],
    ['quiet', phones.quiet],
  ] as const)
    sent.push((q) =>
      q.producer.send(q.topics.channelBinding, ids[who], {
        ...envelope(-120_000),
        identityId: ids[who],
        op: 'bound',
        channel: { type: 'phone', value: phone },
        uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
      }),
    );
  sent.push((q) =>
    q.producer.send(q.topics.simSwap, phones.swapped, {
      ...envelope(-60_000),
      phoneNumber: phones.swapped,
      swappedAt: new Date(Date.now() - 90_000).toISOString(),
      changeType: 'sim_change',
    }),
  );
  sent.push((q) =>
    q.producer.send(q.topics.compromiseSignal, `identity:${ids.leaked}`, {
      ...envelope(-60_000),
      signalId: 'leak-1',
      op: 'raise',
      subject: { type: 'identity', value: ids.leaked },
      kind: 'credential_leak',
      severity: 'high',
      raisedBy: 'soc',
    }),
  );
  await feed(p);
  for (const id of Object.values(ids)) await p.watcher.waitFor(id, () => true);
  await p.watcher.waitFor(ids.swapped, (d) => d.signals.some((s) => s.code === 'sim_swap'));
});

after(async () => {
  await p?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function backtest(
  candidate: string,
  extra: string[] = [],
): Promise<{ code: number | null; out: string; report: BacktestReport }> {
  const report = path.join(dir, `report-${Math.random().toString(36).slice(2)}.json`);
  const child = spawn(
    process.execPath,
    [
      path.join(REPO_ROOT, 'scripts/policy.ts'),
      'backtest',
      '--candidate',
      candidate,
      '--at',
      AT,
      '--report',
      report,
      ...extra,
    ],
    {
      env: {
        ...process.env,
        KAFKA_BROKERS: p.config.KAFKA_BROKERS,
        SCHEMA_REGISTRY_URL: p.config.SCHEMA_REGISTRY_URL,
        REDIS_URL: p.config.REDIS_URL,
        TOPIC_NAMESPACE: p.config.TOPIC_NAMESPACE,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out, report: JSON.parse(readFileSync(report, 'utf8')) as BacktestReport };
}

describe('backtest', () => {
  let stricter: Awaited<ReturnType<typeof backtest>>;

  test('a stricter candidate changes exactly the identities it should, and passes --fail-on looser', async () => {
    stricter = await backtest(files.stricter, ['--fail-on', 'looser']);
    assert.equal(stricter.code, 0, stricter.out);
    const r = stricter.report;
    assert.equal(r.candidate.version, '1.2.0-stricter');
    assert.deepEqual(r.blastRadius, { affected: 1, stricter: 1, looser: 0, routeChange: 0 });
    assert.deepEqual(r.samples.stricter, [ids.swapped]);
    assert.equal(r.identities[ids.swapped]?.medium?.direction, 'stricter');
    for (const id of [ids.quiet, ids.leaked])
      assert.deepEqual(
        Object.values(r.identities[id] ?? {}).map((t) => t.direction),
        ['same', 'same', 'same', 'same'],
      );
    assert.match(stricter.out, /blast radius: 1 identities \(1 stricter, 0 looser, 0 route change\)/);
  });

  test('a looser candidate fails --fail-on looser, naming the identity', async () => {
    const looser = await backtest(files.looser, ['--fail-on', 'looser']);
    assert.equal(looser.code, 1, looser.out);
    assert.deepEqual(looser.report.samples.looser, [ids.leaked]);
    assert.equal(looser.report.identities[ids.leaked]?.high?.direction, 'looser');
  });

  test('two runs over the same input at the same instant give the same report', async () => {
    const again = await backtest(files.stricter);
    assert.deepEqual(again.report, stricter.report);
  });

  test("the report's outcomes are those of an engine that runs the candidate live on the same input", async () => {
    const live = await startPipeline({ POLICY_FILE: files.stricter });
    try {
      await feed(live);
      await live.watcher.waitFor(ids.swapped, (d) => d.signals.some((s) => s.code === 'sim_swap'));
      for (const id of Object.values(ids)) {
        const d = await live.watcher.waitFor(id, () => true);
        const last = live.watcher.forIdentity(id).reduce((a, b) => (b.sequence > a.sequence ? b : a), d);
        const before = p.watcher.forIdentity(id).reduce((a, b) => (b.sequence > a.sequence ? b : a));
        const moves = Object.fromEntries(
          compareTiers(before.tiers, last.tiers).map((t) => [t.tier, t.direction]),
        );
        for (const [tier, t] of Object.entries(stricter.report.identities[id] ?? {})) {
          assert.equal(last.tiers[tier as keyof typeof last.tiers].outcome, t.to, `${id} ${tier}`);
          // And the move from the live policy's decision to the candidate's is the one reported.
          assert.equal(moves[tier], t.direction, `${id} ${tier}`);
        }
      }
    } finally {
      await live.stop();
    }
  });
});
