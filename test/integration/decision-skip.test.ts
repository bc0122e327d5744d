import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { defaultPolicyPath, loadPolicy, loadPolicyFile } from '@assurance/policy';
import { defineScripts, signalKey } from '@assurance/redis';
import { Redis } from 'ioredis';
import { endpoints, uniquePrefix } from '../src/harness.ts';
import { StateHarness } from '../src/state-harness.ts';
import type { ModelEvent } from '../src/state-model.ts';

/**
 * An event that changes nothing a decision depends on is not decided again while the recorded
 * decision is settled (services/engine/src/decider.ts, #settled): most logins. These prove the
 * conditions, each by the decision that follows when one of them fails: a change of state, of
 * policy, a timer, and the renewal window.
 */

const MIN = 60_000;
// Relative to the real clock: Redis expires the scripts' keys at absolute times by its own clock.
const t0 = Math.floor(Date.now() / MIN) * MIN - 60 * MIN;
const policy = loadPolicyFile();
let redis: Redis;
before(async () => {
  redis = new Redis((await endpoints()).REDIS_URL, { enableAutoPipelining: true });
  defineScripts(redis);
});
after(() => redis.quit());

const harness = (prefix: string, p = policy) =>
  new StateHarness({
    redis,
    prefix,
    policy: p,
    stateTtlMs: 400 * 1440 * MIN,
    keepMs: 7 * 1440 * MIN,
    maxClockSkewMs: 5 * MIN,
  });

let n = 0;
const base = (at: number) => ({ eventId: `e-${++n}`, source: 'test', at });
const bind = (at: number): ModelEvent => ({
  ...base(at),
  kind: 'bind',
  id: 'amy',
  channel: { type: 'phone', value: '+33600000001' },
  auth: ['sms_otp'],
  rec: ['sms_code'],
});
const login = (at: number): ModelEvent => ({
  ...base(at),
  kind: 'login',
  id: 'amy',
  outcome: 'success',
  authenticator: 'sms_otp',
  device: 'laptop-1',
  country: 'FR',
});
const swap = (at: number): ModelEvent => ({
  ...base(at),
  kind: 'swap',
  phone: '+33600000001',
  swappedAt: at,
});

async function step(h: StateHarness, e: ModelEvent): Promise<void> {
  h.now = e.at;
  await h.route(e);
  await h.decide();
}

const skipped = async (h: StateHarness) =>
  (await h.metrics.decisionsSkipped.get()).values.reduce((s, v) => s + v.value, 0);

test('a login that changes nothing is not decided again; a change of state is', async () => {
  const h = harness(uniquePrefix());
  await step(h, bind(t0));
  await step(h, login(t0 + MIN));
  const first = h.decisions.length;
  assert.ok(first >= 1);
  // Logins record devices and networks, on which no decision depends.
  assert.equal(await skipped(h), 1);
  await step(h, login(t0 + 2 * MIN));
  assert.equal(h.decisions.length, first);
  assert.equal(await skipped(h), 2);
  await step(h, swap(t0 + 3 * MIN));
  assert.equal(h.decisions.length, first + 1, 'a SIM swap is decided');
  assert.equal(h.decisions.at(-1)?.riskLevel === 'low', false);
});

test('another policy decides again at the next event, even one that changes nothing', async () => {
  const prefix = uniquePrefix();
  const h = harness(prefix);
  await step(h, bind(t0));
  await step(h, login(t0 + MIN));
  const yaml = readFileSync(defaultPolicyPath, 'utf8');
  const stricter = loadPolicy(yaml.replace(/^version: .*$/m, 'version: 1.0.1-test'));
  assert.notEqual(stricter.digest, policy.digest);
  const h2 = harness(prefix, stricter);
  h2.now = t0 + 2 * MIN;
  await step(h2, login(t0 + 2 * MIN));
  assert.equal(h2.decisions.length, 1, 'decided under the new policy');
  assert.equal(h2.decisions[0]?.policyDigest, stricter.digest);
  assert.equal(await skipped(h2), 0);
});

test('a timer always decides, and so does an event within the renewal window', async () => {
  const h = harness(uniquePrefix());
  await step(h, bind(t0));
  await step(h, login(t0 + MIN));
  const made = h.decisions.length;
  const validUntil = Date.parse(h.decisions.at(-1)?.validUntil ?? '');
  assert.equal(await skipped(h), 1);
  // Within a minute of validUntil (the renewal lead of the default policy): renewed, not skipped.
  await step(h, login(validUntil - 30_000));
  assert.equal(h.decisions.length, made + 1);
  assert.equal(await skipped(h), 1);
  h.now = validUntil - 20_000;
  await h.expire('amy');
  assert.equal(await skipped(h), 1, 'a timer is never skipped');
});

test('a decision recorded but never acknowledged is owed: the next event produces it, even one that changes nothing', async () => {
  const h = harness(uniquePrefix());
  await step(h, bind(t0));
  await step(h, login(t0 + MIN));
  const record = await h.read('amy');
  assert.ok(record?.digest && record.policyTag && record.validUntilMs);
  // A crash between recording a decision and Kafka's acknowledgement leaves this behind.
  const owed = record.seq + 1000;
  await h.store.commit(
    'amy',
    record.seq,
    owed,
    record.digest,
    record.validUntilMs,
    record.policyTag,
    record.stateVersion,
  );
  const made = h.decisions.length;
  await step(h, login(t0 + 2 * MIN));
  assert.equal(h.decisions.length, made + 1);
  assert.equal(h.decisions.at(-1)?.sequence, owed);
  assert.equal((await h.read('amy'))?.published, owed);
});

test('a change applied but never decided (a crash in between) is decided at the next event, even one that changes nothing', async () => {
  const h = harness(uniquePrefix());
  await step(h, bind(t0));
  await step(h, login(t0 + MIN));
  const before = h.decisions.length;
  // What an engine killed between apply and commit leaves behind: the state moved, no decision.
  const at = t0 + 2 * MIN;
  await h.store.apply(
    'amy',
    {
      mutations: [
        {
          t: 'r',
          k: signalKey('takeover_confirmed', 'identity', null),
          code: 'takeover_confirmed',
          scope: 'identity',
          ref: null,
          since: at,
          exp: -1,
          ev: 'soc-crash-1',
          at,
          attrs: {},
        },
      ],
    },
    at,
  );
  assert.equal(h.decisions.length, before);
  await step(h, login(t0 + 3 * MIN));
  assert.equal(h.decisions.length, before + 1, 'decided, not skipped');
  assert.ok(h.decisions.at(-1)?.signals.some((s) => s.code === 'takeover_confirmed'));
});
