import assert from 'node:assert/strict';
import { buildDecision, materialOf } from '@assurance/engine';
import { evaluate, loadPolicyFile } from '@assurance/policy';
import type { RedisConnection } from '@assurance/redis';
import { toIdentityState } from '@assurance/redis';
import type { Authenticator, IdentityState, RecoveryMethod, SignalKind } from '@assurance/schemas';
import fc from 'fast-check';
import { uniquePrefix } from './harness.ts';
import { refOf, StateHarness } from './state-harness.ts';
import type { ModelEvent, Subject } from './state-model.ts';
import { StateModel } from './state-model.ts';

/**
 * The state property (docs/state.md) against its oracle (state-model.ts): generation, delivery
 * through the real router and decider on the real Redis (state-harness.ts), and the comparison.
 * Run by test/integration/state-oracle.test.ts (a few hundred runs) and by `npm run soak:state`
 * (thousands, seed printed).
 */

const policy = loadPolicyFile();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const STATE_TTL = 30 * DAY;
const KEEP = 7 * DAY;
const SKEW = 10 * 60_000;

const IDS = ['alice', 'bob', 'carol'] as const;
const PHONES = ['+33612345601', '+33612345602'] as const;
const EMAILS = ['a@example.org'] as const;
const DEVICES = ['dev-1', 'dev-2'] as const;
const SYNC = 'keychain-1';
/** Jumps that never land on a lifetime boundary (lifetimes are whole days or hours). */
const JUMPS = {
  short: 17 * 60_000 + 13,
  week: 7 * DAY + 5 * HOUR + 17,
  past: STATE_TTL + 60 * DAY + 3 * HOUR + 29,
};

// --- generation -----------------------------------------------------------------------------------

type Spec =
  | { t: 'bind' | 'unbind'; id: number; ch: number; auth: Authenticator[]; rec: RecoveryMethod[] }
  | { t: 'bindSync'; id: number; routes: number[] }
  | { t: 'unbindSync'; id: number }
  | { t: 'enroll' | 'remove' | 'lost'; id: number; dev: number; auth: Authenticator[] }
  | { t: 'swap'; phone: number; before: number }
  | { t: 'mailbox' }
  | { t: 'socRaise'; subject: number; signal: number; kind: SignalKind; expires: number | null }
  | { t: 'socClear'; subject: number; signal: number; kind: SignalKind | null }
  | {
      t: 'login';
      id: number;
      ok: boolean;
      auth: Authenticator;
      dev: number | null;
      country: string | null;
      future: boolean;
    }
  | { t: 'burst'; id: number; n: number };

const CHANNELS = [
  ...PHONES.map((value) => ({ type: 'phone' as const, value })),
  ...EMAILS.map((value) => ({ type: 'email' as const, value })),
];
const SUBJECTS: Subject[] = [
  ...IDS.map((value) => ({ type: 'identity' as const, value })),
  ...PHONES.map((value) => ({ type: 'phone' as const, value })),
  ...EMAILS.map((value) => ({ type: 'email' as const, value })),
  ...DEVICES.map((value) => ({ type: 'device' as const, value })),
  { type: 'credential', value: 'key-1', identityId: 'alice' },
];

const id = fc.nat(IDS.length - 1);
const spec: fc.Arbitrary<Spec> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constantFrom('bind' as const, 'unbind' as const),
      id,
      ch: fc.nat(CHANNELS.length - 1),
      auth: fc.subarray(['sms_otp', 'voice_otp', 'email_otp', 'totp'] as Authenticator[]),
      rec: fc.subarray(['sms_code', 'email_link'] as RecoveryMethod[]),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('bindSync' as const), id, routes: fc.subarray([0, 1, 2]) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unbindSync' as const), id }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constantFrom('enroll' as const, 'remove' as const, 'lost' as const),
      id,
      dev: fc.nat(DEVICES.length - 1),
      auth: fc.subarray(['push', 'passkey_device_bound'] as Authenticator[]),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('swap' as const),
      phone: fc.nat(PHONES.length - 1),
      before: fc.nat(3 * DAY),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('mailbox' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('socRaise' as const),
      subject: fc.nat(SUBJECTS.length - 1),
      signal: fc.nat(1),
      kind: fc.constantFrom<SignalKind>('account_takeover', 'sim_swap', 'credential_leak'),
      expires: fc.option(fc.constantFrom(DAY, 10 * DAY), { nil: null }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('socClear' as const),
      subject: fc.nat(SUBJECTS.length - 1),
      signal: fc.nat(1),
      kind: fc.option(fc.constantFrom<SignalKind>('account_takeover', 'sim_swap', 'credential_leak'), {
        nil: null,
      }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('login' as const),
      id,
      ok: fc.boolean(),
      auth: fc.constantFrom<Authenticator>('push', 'totp', 'password'),
      dev: fc.option(fc.nat(DEVICES.length - 1), { nil: null }),
      country: fc.option(fc.constantFrom('FR', 'DE'), { nil: null }),
      future: fc.nat(11).map((n) => n === 0),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('burst' as const), id, n: fc.integer({ min: 5, max: 7 }) }),
  },
);

interface PhaseSpec {
  jump: keyof typeof JUMPS;
  events: Array<{ spec: Spec; minutesAgo: number }>;
  /** Per delivery, a rank: deliveries are reordered by it, each key keeping its order. */
  ranks: number[];
  /** Deliveries delivered again: same source (redelivery) or another (a producer's replay). */
  dups: Array<{ at: number; sameSource: boolean; rank: number }>;
  /** Events of earlier phases replayed in this one (after the late-event window when the jump is long). */
  replays: Array<{ pick: number; rank: number }>;
  /** After each delivery, how many routed messages the decider takes (the rest wait). */
  decide: number[];
}

const phase: fc.Arbitrary<PhaseSpec> = fc.record({
  jump: fc.constantFrom<keyof typeof JUMPS>('short', 'short', 'week', 'week', 'past'),
  events: fc.array(fc.record({ spec, minutesAgo: fc.integer({ min: -5, max: 180 }) }), { maxLength: 10 }),
  ranks: fc.array(fc.nat(1000), { minLength: 40, maxLength: 40 }),
  dups: fc.array(fc.record({ at: fc.nat(), sameSource: fc.boolean(), rank: fc.nat(1000) }), { maxLength: 3 }),
  replays: fc.array(fc.record({ pick: fc.nat(), rank: fc.nat(1000) }), { maxLength: 3 }),
  decide: fc.array(fc.nat(4), { minLength: 40, maxLength: 40 }),
});

/** Turns a phase's specs into events with times and ids, and the order they are delivered in. */
function materialize(
  p: PhaseSpec,
  clock: number,
  counter: { n: number; lastLogin: Map<string, number> },
  earlier: readonly ModelEvent[],
): { events: ModelEvent[]; deliveries: ModelEvent[] } {
  const events: ModelEvent[] = [];
  const next = (minutesAgo: number) => {
    counter.n += 1;
    return { eventId: `e${counter.n}`, source: 'gen', at: clock - minutesAgo * 60_000 - counter.n };
  };
  for (const { spec: s, minutesAgo } of p.events) {
    switch (s.t) {
      case 'bind':
      case 'unbind':
        events.push({
          ...next(minutesAgo),
          kind: s.t,
          id: IDS[s.id] as string,
          channel: CHANNELS[s.ch] as (typeof CHANNELS)[number],
          auth: s.auth,
          rec: s.rec,
          ...(s.id === 0 ? { tenant: 'acme' } : {}),
        });
        break;
      case 'bindSync':
        events.push({
          ...next(minutesAgo),
          kind: 'bindSync',
          id: IDS[s.id] as string,
          sync: SYNC,
          routes: s.routes.map((i) => CHANNELS[i] as (typeof CHANNELS)[number]),
        });
        break;
      case 'unbindSync':
        events.push({
          ...next(minutesAgo),
          kind: 'unbindSync',
          id: IDS[s.id] as string,
          sync: SYNC,
          routes: [],
        });
        break;
      case 'enroll':
      case 'remove':
      case 'lost':
        events.push({
          ...next(minutesAgo),
          kind: s.t,
          id: IDS[s.id] as string,
          device: DEVICES[s.dev] as string,
          auth: s.auth,
        });
        break;
      case 'swap': {
        const base = next(minutesAgo);
        events.push({
          ...base,
          kind: 'swap',
          phone: PHONES[s.phone] as string,
          swappedAt: base.at - s.before,
        });
        break;
      }
      case 'mailbox':
        events.push({ ...next(minutesAgo), kind: 'mailbox', email: EMAILS[0] });
        break;
      case 'socRaise': {
        const base = next(minutesAgo);
        events.push({
          ...base,
          kind: 'socRaise',
          subject: SUBJECTS[s.subject] as Subject,
          signalId: `INC-${s.signal}`,
          socKind: s.kind,
          ...(s.expires === null ? {} : { expiresAt: base.at + s.expires }),
        });
        break;
      }
      case 'socClear':
        events.push({
          ...next(minutesAgo),
          kind: 'socClear',
          subject: SUBJECTS[s.subject] as Subject,
          signalId: `INC-${s.signal}`,
          ...(s.kind === null ? {} : { socKind: s.kind }),
        });
        break;
      case 'login': {
        const base = next(s.future ? -61 : minutesAgo);
        events.push({
          ...base,
          kind: 'login',
          id: IDS[s.id] as string,
          outcome: s.ok ? 'success' : 'failure',
          authenticator: s.auth,
          ...(s.dev === null ? {} : { device: DEVICES[s.dev] }),
          ...(s.country === null ? {} : { country: s.country }),
        });
        break;
      }
      case 'burst':
        for (let i = 0; i < s.n; i++) {
          const base = next(minutesAgo);
          events.push({
            ...base,
            at: clock - minutesAgo * 60_000 - (s.n - i) * 20_000 - counter.n,
            kind: 'login',
            id: IDS[s.id] as string,
            outcome: 'failure',
            authenticator: 'push',
            device: DEVICES[0],
          });
        }
        break;
    }
  }
  // A login topic is keyed by identity and its producer emits in time order: each identity's logins
  // reach the engine in the order of their times, from one phase to the next too.
  for (const who of IDS) {
    const mine = events.map((e, i) => [e, i] as const).filter(([e]) => e.kind === 'login' && e.id === who);
    const times = mine.map(([e]) => e.at).sort((a, b) => a - b);
    let floor = counter.lastLogin.get(who) ?? Number.NEGATIVE_INFINITY;
    mine.forEach(([e, i], j) => {
      const at = Math.max(times[j] as number, floor + 1);
      floor = at;
      events[i] = { ...e, at };
    });
    counter.lastLogin.set(who, floor);
  }
  const deliveries: Array<{ e: ModelEvent; rank: number }> = events.map((e, i) => ({
    e,
    rank: p.ranks[i % p.ranks.length] as number,
  }));
  for (const d of p.dups) {
    if (events.length === 0) break;
    const e = events[d.at % events.length] as ModelEvent;
    deliveries.push({
      e: d.sameSource || e.kind === 'login' ? e : { ...e, source: 'replayed' },
      rank: d.rank,
    });
  }
  const replayable = earlier.filter((e) => e.kind !== 'login');
  for (const r of p.replays) {
    if (replayable.length === 0) break;
    deliveries.push({
      e: { ...(replayable[r.pick % replayable.length] as ModelEvent), source: 'backfill' },
      rank: r.rank,
    });
  }
  return { events, deliveries: keyOrdered(deliveries) };
}

/** Sorts by rank, then gives each Kafka key (topic and key) its deliveries back in their original order. */
function keyOrdered(deliveries: ReadonlyArray<{ e: ModelEvent; rank: number }>): ModelEvent[] {
  const keyOf = (e: ModelEvent) => {
    switch (e.kind) {
      case 'swap':
        return `sim|${e.phone}`;
      case 'mailbox':
        return `mail|${e.email}`;
      case 'socRaise':
      case 'socClear':
        return `soc|${e.subject.type}:${e.subject.value}`;
      case 'login':
        return `login|${e.id}`;
      case 'enroll':
      case 'remove':
      case 'lost':
        return `device|${e.id}`;
      default:
        return `binding|${e.id}`;
    }
  };
  const sorted = deliveries.map((d, i) => ({ ...d, i })).sort((a, b) => a.rank - b.rank || a.i - b.i);
  const slots = new Map<string, number[]>();
  sorted.forEach((d, pos) => {
    const k = keyOf(d.e);
    slots.set(k, [...(slots.get(k) ?? []), pos]);
  });
  const out: ModelEvent[] = new Array(sorted.length);
  for (const [k, positions] of slots) {
    const original = deliveries.filter((d) => keyOf(d.e) === k).map((d) => d.e);
    positions.forEach((pos, j) => {
      out[pos] = original[j] as ModelEvent;
    });
  }
  return out;
}

// --- comparison ----------------------------------------------------------------------------------

function normalized(s: IdentityState) {
  return {
    tenantId: s.tenantId,
    bindingsKnown: s.bindingsKnown,
    bindings: s.bindings.map((b) => ({ ...b, recoverableVia: [...(b.recoverableVia ?? [])] })),
    signals: s.signals.map((x) => ({
      code: x.code,
      scope: x.scope,
      ref: x.ref,
      since: x.since,
      expiresAt: x.expiresAt,
      attributes: x.attributes,
      sources: x.sourceEventIds.length <= 8 ? [...x.sourceEventIds].sort() : x.sourceEventIds.length,
    })),
  };
}

async function check(h: StateHarness, model: StateModel, phaseNo: number): Promise<void> {
  for (const who of IDS) {
    const record = await h.read(who);
    const real = record
      ? toIdentityState(record, h.now)
      : { identityId: who, tenantId: null, bindingsKnown: false, bindings: [], signals: [] };
    const expected = model.stateOf(who, h.now);
    const r = normalized(real);
    const m = normalized(expected);
    // The engine keeps the ids of the newest eight sources; the model all of them.
    r.signals.forEach((x, i) => {
      const want = m.signals[i];
      if (want && typeof want.sources === 'number' && Array.isArray(x.sources) && x.sources.length === 8)
        x.sources = want.sources;
    });
    assert.deepEqual(r, m, `phase ${phaseNo}: ${who}'s state`);
    await h.expire(who);
    if (!record) continue;
    const mine = h.decisions.filter((d) => d.identityId === who);
    const last = mine.reduce((a, d) => (d.sequence > a.sequence ? d : a));
    const now = new Date(h.now);
    const want = buildDecision({
      policy,
      state: expected,
      evaluation: evaluate(policy, expected, now),
      sequence: 1,
      trigger: last.trigger,
      now,
    });
    assert.equal(materialOf(last), materialOf(want), `phase ${phaseNo}: ${who}'s decision`);
  }
}

function assertSequencesGrow(h: StateHarness): void {
  for (const who of IDS) {
    const seen = h.decisions.filter((d) => d.identityId === who);
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1], seen[i]] as const;
      if (!a || !b) continue;
      assert.ok(
        b.sequence > a.sequence || (b.sequence === a.sequence && materialOf(a) === materialOf(b)),
        `${who}: sequence ${b.sequence} after ${a.sequence}`,
      );
    }
  }
}

export interface StatePropertyOptions {
  readonly redis: RedisConnection;
  readonly runs: number;
  readonly seed?: number;
  /** How long a failure may shrink before it is reported as shrunk so far. */
  readonly shrinkLimitMs: number;
  /**
   * A time budget for the search (the soak's): once spent, the runs made so far are the result.
   * Without it every run is made, however slow the machine.
   */
  readonly searchLimitMs?: number;
}

/**
 * Runs the property; resolves with the number of runs made, or rejects with fast-check's report
 * (seed, counterexample) on a failure.
 */
export async function checkStateProperty(o: StatePropertyOptions): Promise<number> {
  const redis = o.redis;
  const property = fc.asyncProperty(fc.array(phase, { minLength: 1, maxLength: 4 }), async (phases) => {
    const prefix = uniquePrefix();
    const h = new StateHarness({
      redis,
      prefix,
      policy,
      stateTtlMs: STATE_TTL,
      keepMs: KEEP,
      maxClockSkewMs: SKEW,
    });
    const model = new StateModel({ policy, ref: refOf, stateTtlMs: STATE_TTL, keepMs: KEEP });
    // Ahead of the real clock, so Redis never expires a key the engine's clock still needs.
    let clock = Date.now() + DAY;
    const counter = { n: 0, lastLogin: new Map<string, number>() };
    const earlier: ModelEvent[] = [];
    let futures = 0;
    try {
      for (const [k, p] of phases.entries()) {
        if (k > 0) clock += JUMPS[p.jump];
        h.now = clock;
        const { events, deliveries } = materialize(p, clock, counter, earlier);
        for (const [i, e] of deliveries.entries()) {
          await h.route(e);
          if (e.kind === 'login' && e.at > clock + SKEW) futures += 1;
          await h.decide(Math.min(h.pending, p.decide[i % p.decide.length] as number));
        }
        await h.decide();
        model.applyPhase(clock, deliveries, SKEW);
        earlier.push(...events.filter((e) => e.at <= clock + SKEW));
        await check(h, model, k);
      }
      assertSequencesGrow(h);
      assert.equal(h.deadLetters.length, futures, 'only logins dated beyond the skew are dead-lettered');
    } finally {
      await h.meta.wipe();
    }
  });
  // The search has no time limit unless asked: one would turn a slow machine into a failure (or,
  // unmarked, into fewer runs than asked). The shrinking of a failure found has one, so a failure
  // is reported before the test's own timeout.
  const found = await fc.check(property, {
    numRuns: o.runs,
    ...(o.seed === undefined ? {} : { seed: o.seed }),
    ...(o.searchLimitMs === undefined ? {} : { interruptAfterTimeLimit: o.searchLimitMs }),
    endOnFailure: true,
  });
  if (!found.failed) {
    if (o.searchLimitMs === undefined)
      assert.equal(found.numRuns, o.runs, `the property ran ${found.numRuns} of ${o.runs} runs`);
    return found.numRuns;
  }
  const shrunk = await fc.check(property, {
    seed: found.seed,
    ...(found.counterexamplePath === null ? {} : { path: found.counterexamplePath }),
    interruptAfterTimeLimit: o.shrinkLimitMs,
  });
  // A failure that does not come back when replayed is reported as first seen.
  throw new Error(fc.defaultReportMessage(shrunk.failed ? shrunk : found));
}

/**
 * A fixed mix of events from the generator (same seed, same events), all at about `clock`: what
 * the data-loss tests (test/faults/data-loss.test.ts) push through a real engine and Kafka.
 */
export function sampleEvents(
  seed: number,
  clock: number,
  phases = 4,
  /** Shared across calls: event ids stay unique, and each identity's logins in time order. */
  counter: { n: number; lastLogin: Map<string, number> } = { n: 0, lastLogin: new Map() },
): ModelEvent[] {
  const specs = fc.sample(phase, { seed, numRuns: phases });
  return specs.flatMap((p) => materialize({ ...p, dups: [], replays: [] }, clock, counter, []).events);
}

export { IDS as STATE_IDS, KEEP as STATE_KEEP_MS, SKEW as STATE_SKEW_MS };
