/**
 * Two engines share the consumer groups, the Redis state and the sweeper: per-identity order holds,
 * every expiry is re-decided exactly once, and explain reads the same state.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Engine } from '@assurance/engine';
import { startEngine } from '@assurance/engine';
import { REPO_ROOT } from '@assurance/stack';
import { main as cli } from '../../services/engine/src/cli.ts';
import { envelope, startPipeline } from '../src/pipeline.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let second: Engine;
before(async () => {
  p = await startPipeline({ INTERNAL_PARTITIONS: '4' });
  second = await startEngine(p.config, p.logger);
});
after(async () => {
  await second?.stop();
  await p?.stop();
});

const N = 24;
const ids = Array.from({ length: N }, (_, i) => `multi-${Date.now().toString(36)}-${i}`);

test('per-identity order holds with two engines: sequences strictly increase and every event lands', async () => {
  const kinds = ['credential_leak', 'suspicious_activity', 'token_theft'] as const;
  for (const [round, kind] of kinds.entries()) {
    for (const id of ids) {
      await p.producer.send(
        p.topics.compromiseSignal,
        `identity:${id}`,
        {
          ...envelope(),
          signalId: `${id}-${round}`,
          op: 'raise',
          subject: { type: 'identity', value: id },
          kind,
          severity: 'low',
          raisedBy: 'soc',
        },
        round % 2 ? 'avro' : 'json',
      );
    }
  }
  for (const id of ids) {
    await p.watcher.waitFor(id, (d) => d.signals.length === kinds.length, 60_000);
    const seqs = p.watcher.forIdentity(id).map((d) => d.sequence);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      `${id}: ${seqs.join(',')}`,
    );
    assert.equal(new Set(seqs).size, seqs.length, `${id}: a sequence published twice`);
  }
});

test('expiries are re-decided once each, with two sweepers racing', async () => {
  const expiresAt = new Date(Date.now() + 2500).toISOString();
  for (const id of ids) {
    await p.producer.send(p.topics.compromiseSignal, `identity:${id}`, {
      ...envelope(),
      signalId: `${id}-expiring`,
      op: 'raise',
      subject: { type: 'identity', value: id },
      kind: 'account_takeover',
      severity: 'high',
      expiresAt,
      raisedBy: 'soc',
    });
  }
  for (const id of ids) {
    const held = await p.watcher.waitFor(id, (d) => d.signals.some((s) => s.code === 'takeover_confirmed'));
    const relaxed = await p.watcher.waitFor(id, (d) => d.sequence > held.sequence, 30_000);
    assert.ok(relaxed.trigger.eventId.startsWith('expiry:'));
    assert.equal(
      relaxed.signals.some((s) => s.code === 'takeover_confirmed'),
      false,
    );
  }
  // A later event per identity proves nothing else was published after the relaxed decision.
  for (const id of ids) {
    await p.producer.send(p.topics.compromiseSignal, `identity:${id}`, {
      ...envelope(),
      signalId: `${id}-final`,
      op: 'raise',
      subject: { type: 'identity', value: id },
      kind: 'credential_leak',
      severity: 'low',
      raisedBy: 'soc',
    });
  }
  for (const id of ids) {
    const last = await p.watcher.waitFor(id, (d) =>
      d.signals.some((s) => s.sourceEventIds.length > 0 && s.attributes.signalId === `${id}-final`),
    );
    const expiryDecisions = p.watcher.forIdentity(id).filter((d) => d.trigger.eventId.startsWith('expiry:'));
    assert.equal(expiryDecisions.length, 1, `${id} was re-decided ${expiryDecisions.length} times`);
    const seqs = p.watcher.forIdentity(id).map((d) => d.sequence);
    assert.equal(new Set(seqs).size, seqs.length, 'no sequence published twice');
    assert.equal(last.sequence, Math.max(...seqs));
  }
});

test('explain shows the live state and the reasons', async () => {
  const id = ids[0] as string;
  let out = '';
  process.env.REDIS_URL = p.config.REDIS_URL;
  process.env.REDIS_PREFIX = p.config.REDIS_PREFIX;
  assert.equal(
    await cli(['explain', id, '--json'], (t) => {
      out += t;
    }),
    0,
  );
  const e = JSON.parse(out) as {
    identityId: string;
    activeSignals: Array<{ code: string }>;
    now: { reasons: Array<{ code: string }> };
  };
  assert.equal(e.identityId, id);
  assert.ok(e.activeSignals.some((s) => s.code === 'credential_compromised'));
  assert.ok(e.now.reasons.length > 0);
});

test('explain --policy shows what a candidate would require of the same state, tier by tier', async () => {
  const id = ids[0] as string;
  // The candidate drops phishing resistance from the compromised-credential rule: high gets looser.
  const live = readFileSync(path.join(REPO_ROOT, 'packages/policy/policies/default.yaml'), 'utf8');
  const candidate = live.replace(
    '      stepUp: low\n      requirePhishingResistant: high\n      risk: high',
    '      stepUp: low\n      risk: high',
  );
  assert.notEqual(candidate, live);
  const dir = mkdtempSync(path.join(tmpdir(), 'candidate-'));
  const file = path.join(dir, 'candidate.yaml');
  writeFileSync(file, candidate);
  try {
    let out = '';
    assert.equal(await cli(['explain', id, '--json', '--policy', file], (t) => (out += t)), 0);
    const e = JSON.parse(out) as {
      candidate: { transitions: Array<{ tier: string; direction: string; reasonsRemoved: string[] }> };
    };
    const byTier = Object.fromEntries(e.candidate.transitions.map((t) => [t.tier, t.direction]));
    assert.deepEqual(byTier, { low: 'same', medium: 'same', high: 'looser', critical: 'same' });
    let text = '';
    assert.equal(await cli(['explain', id, '--policy', file], (t) => (text += t)), 0);
    assert.match(text, /high +step_up -> step_up +looser/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
