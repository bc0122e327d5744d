import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ERROR_CODES } from '@assurance/core';
import type { RoutedInfo } from '@assurance/engine';
import { loadScripts } from '@assurance/redis';
import type { Decision } from '@assurance/schemas';
import { BASE_TOPICS, INPUT_ROLES, OUTCOMES, RISK_LEVELS, TIERS, TOPICS } from '@assurance/schemas';
import { envelope, startPipeline } from '../src/pipeline.ts';
import { collectEvents } from '../src/wait.ts';

/**
 * STYLE.md §9 on a live engine: bounded labels, never an identity, address or phone number. The
 * same story (bind a phone and an inbox, enroll a device, log in from an IP, then the phone is
 * swapped and the inbox tampered with) is played for 50 identities, then for 250 more; the
 * engine's series must not grow with them, must not carry any of their identifiers, and every
 * label value must come from a closed set.
 *
 * Series are counted as the sample lines of `registry.metrics()` (what /metrics serves), histogram
 * buckets included, for the engine's own metrics. The default process metrics
 * (`assurance_engine_*`) are left out of the count: their labels follow the runtime (GC kinds,
 * active handle types), not the input; they are still searched for identifiers.
 *
 * Every identifier is fixed (not random per run), so the partitions they hash to, and with them
 * the per-partition lag series, are the same on every run.
 */

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;

interface Person {
  identityId: string;
  phone: string;
  email: string;
  ip: string;
  deviceId: string;
  userAgent: string;
}

const person = (i: number): Person => {
  const n = String(i).padStart(4, '0');
  return {
    identityId: `hyg-identity-${n}`,
    phone: `+4477009${String(i).padStart(5, '0')}`,
    email: `hyg.person.${n}@example.org`,
    ip: `${i % 2 === 0 ? '198.51.100' : '203.0.113'}.${(i % 250) + 1}`,
    deviceId: `hyg-device-${n}`,
    userAgent: `HygieneAgent/${n}`,
  };
};

const ns = (topic: string) => `${p.config.TOPIC_NAMESPACE}.${topic}`;

/** Sends every message of one step, and resolves once the router has handled them all. */
async function step(sends: Array<() => Promise<void>>): Promise<RoutedInfo[]> {
  const done = collectEvents<RoutedInfo>(p.engine.events, 'routed', sends.length, 60_000);
  await Promise.all(sends.map((s) => s()));
  return done;
}

/**
 * Plays the story for `people` one step at a time (each step fully routed before the next), so
 * every identity sees the same sequence of decisions whatever the timing, and waits for each
 * identity's final decision.
 */
async function play(people: Person[]): Promise<void> {
  const send = (topic: string, key: string, value: Record<string, unknown>) => () =>
    p.producer.send(ns(topic), key, { ...envelope(), ...value });
  await step(
    people.flatMap((x) => [
      send(BASE_TOPICS.channelBinding, x.identityId, {
        identityId: x.identityId,
        op: 'bound',
        channel: { type: 'phone', value: x.phone },
        uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
      }),
      send(BASE_TOPICS.channelBinding, x.identityId, {
        identityId: x.identityId,
        op: 'bound',
        channel: { type: 'email', value: x.email },
        uses: { authenticators: ['email_otp'], recovery: ['email_link'] },
      }),
    ]),
  );
  await step(
    people.map((x) =>
      send(BASE_TOPICS.device, x.identityId, {
        identityId: x.identityId,
        deviceId: x.deviceId,
        change: 'enrolled',
        authenticators: ['push', 'totp'],
      }),
    ),
  );
  await step(
    people.map((x) =>
      send(BASE_TOPICS.login, x.identityId, {
        identityId: x.identityId,
        outcome: 'success',
        authenticator: 'push',
        ip: x.ip,
        deviceId: x.deviceId,
        userAgent: x.userAgent,
      }),
    ),
  );
  await step(
    people.map((x) =>
      send(BASE_TOPICS.simSwap, x.phone, {
        phoneNumber: x.phone,
        swappedAt: new Date().toISOString(),
        changeType: 'port_out',
      }),
    ),
  );
  await step(
    people.map((x) =>
      send(BASE_TOPICS.mailboxChange, x.email, {
        mailbox: x.email,
        change: 'forwarding_rule_added',
        external: true,
      }),
    ),
  );
  // Bad input that carries identifiers too: dead-lettered, counted by error class only.
  const first = people[0] as Person;
  const routed = await step([
    () =>
      p.producer.sendRaw(
        ns(BASE_TOPICS.login),
        'hyg-bad-json',
        `{"identityId":"${first.identityId}","mailbox":"${first.email}",`,
      ),
    send(BASE_TOPICS.simSwap, 'hyg-bad-phone', {
      phoneNumber: `call ${first.phone} maybe`,
      swappedAt: new Date().toISOString(),
      changeType: 'sim_change',
    }),
  ]);
  assert.deepEqual(routed.map((r) => r.error).sort(), ['invalid_json', 'validation_failed']);

  const final = (d: Decision) =>
    ['sim_swap', 'mailbox_tampered'].every((code) => d.signals.some((s) => s.code === code));
  // One at a time: most are already there, and 300 parallel waits would be 300 listeners.
  for (const x of people) await p.watcher.waitFor(x.identityId, final, 60_000);
}

/** `name{labels}` and labels of every sample line of the exposition text. */
function samples(text: string): Array<{ name: string; labels: Record<string, string>; line: string }> {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
      assert.ok(m, `not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1] as string] = l[2] as string;
      }
      return { name: m[1] as string, labels, line };
    });
}

const own = (text: string) => samples(text).filter((s) => !s.name.startsWith('assurance_engine_'));

const people = Array.from({ length: 300 }, (_, i) => person(i));
let after50 = '';
let after300 = '';

before(async () => {
  p = await startPipeline();
  await play(people.slice(0, 50));
  after50 = await p.engine.metrics.registry.metrics();
  await play(people.slice(50));
  after300 = await p.engine.metrics.registry.metrics();
});
after(() => p?.stop());

describe('engine metrics hygiene', () => {
  test('the number of series is the same after 300 identities as after 50', (t) => {
    const a = own(after50).map((s) => s.line.replace(/ \S+$/, ''));
    const b = own(after300).map((s) => s.line.replace(/ \S+$/, ''));
    assert.ok(a.length > 100, `only ${a.length} series: did the story run?`);
    assert.deepEqual(
      b.filter((x) => !a.includes(x)),
      [],
      'series that appeared between 50 and 300 identities',
    );
    assert.equal(b.length, a.length);
    t.diagnostic(
      `${a.length} series after 50 identities, ${b.length} after 300 (histogram buckets included)`,
    );
    // The story did run for all of them.
    const consumed = own(after300)
      .filter((s) => s.name === 'assurance_events_consumed_total' && s.labels.result === 'ok')
      .reduce((sum, s) => sum + Number(s.line.split(' ').at(-1)), 0);
    assert.equal(consumed, 300 * 6);
  });

  test('no identity, phone number, email address, device id, user agent or IP appears in /metrics', () => {
    for (const text of [after50, after300]) {
      const lower = text.toLowerCase();
      for (const x of people) {
        for (const value of [
          x.identityId,
          x.phone,
          x.phone.slice(1),
          x.email,
          x.ip,
          x.deviceId,
          x.userAgent,
        ]) {
          assert.ok(!lower.includes(value.toLowerCase()), `${value} appears in /metrics`);
        }
      }
      assert.doesNotMatch(text, /@example\.org|hyg-|\+4477009/);
    }
  });

  test('label values come only from closed sets', () => {
    const inputTopics: string[] = INPUT_ROLES.map((r) => BASE_TOPICS[r]);
    const scripts = loadScripts().map((s) => s.name);
    const partitionsOf = new Map<string, number>([
      ...INPUT_ROLES.map((r) => [p.topics[r], TOPICS[BASE_TOPICS[r]].partitions] as const),
      [p.topics.identityEvents, p.config.INTERNAL_PARTITIONS] as const,
    ]);
    const closed: Record<string, (value: string, name: string, labels: Record<string, string>) => boolean> = {
      topic: (v, name) => (name === 'assurance_consumer_lag' ? partitionsOf.has(v) : inputTopics.includes(v)),
      result: (v, name) =>
        name.startsWith('assurance_redis_script_seconds')
          ? ['ok', 'error'].includes(v)
          : name === 'assurance_store_checks_total'
            ? ['ok', 'verified', 'changed', 'unreachable'].includes(v)
            : ['ok', 'dead_letter'].includes(v),
      kind: (v, name) => name === 'assurance_store_recoveries_total' && ['replay', 'gap', 'lost'].includes(v),
      encoding: (v) => ['json', 'registry-avro'].includes(v),
      error: (v) => (ERROR_CODES as readonly string[]).includes(v),
      risk: (v) => (RISK_LEVELS as readonly string[]).includes(v),
      tier: (v) => (TIERS as readonly string[]).includes(v),
      outcome: (v) => (OUTCOMES as readonly string[]).includes(v),
      stage: (v) => ['router', 'decider'].includes(v),
      partition: (v, _n, labels) =>
        /^\d+$/.test(v) && Number(v) < (partitionsOf.get(labels.topic ?? '') ?? 0),
      script: (v) => scripts.includes(v),
      le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
    };
    const seen = new Set<string>();
    for (const s of own(after300)) {
      for (const [label, value] of Object.entries(s.labels)) {
        const check = closed[label];
        assert.ok(check, `${s.name}: label ${label} has no closed set`);
        assert.ok(check(value, s.name, s.labels), `${s.name}: ${label}="${value}" is outside its closed set`);
        seen.add(label);
      }
    }
    // The story reached every kind of label (so the checks above were not vacuous).
    for (const label of [
      'topic',
      'result',
      'encoding',
      'error',
      'risk',
      'tier',
      'outcome',
      'stage',
      'partition',
      'script',
      'le',
    ]) {
      assert.ok(seen.has(label), `no series with label ${label}`);
    }
  });
});
