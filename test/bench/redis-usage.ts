/**
 * Redis figures for the report (memory per identity, command time per phase) and the cleanup of
 * the run's keys. Everything is scoped to the run's key prefix, except INFO, which is server-wide.
 */
import { randomUUID } from 'node:crypto';
import type { Mutation } from '@assurance/redis';
import {
  decodeIdentity,
  defineScripts,
  keySpace,
  StateStore,
  signalKey,
  socKey,
  toIdentityState,
} from '@assurance/redis';
import type { SignalCode, SignalScope } from '@assurance/schemas';
import type { Redis } from 'ioredis';

/** INFO memory used_memory, bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

/** Visits every key under `prefix` (SCAN, never KEYS), a batch at a time. */
export async function scanPrefix(
  redis: Redis,
  prefix: string,
  onBatch: (keys: string[]) => Promise<void>,
): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
    cursor = next;
    if (keys.length > 0) await onBatch(keys);
  } while (cursor !== '0');
}

/** `{i:ID}:meta` → `identity:meta`, `{c:REF}:members` → `channel:members`, `{sweep:3}:due` → `sweep:due`. */
function kindOf(prefix: string, key: string): string {
  const rest = key.slice(prefix.length);
  const close = rest.indexOf('}');
  const tag = rest.startsWith('{i:')
    ? 'identity'
    : rest.startsWith('{c:')
      ? 'channel'
      : rest.slice(1, close).replace(/:\d+$/, '');
  return `${tag}${rest.slice(close + 1)}`;
}

export interface PrefixMemory {
  readonly keys: number;
  /** Estimated bytes over every key of the prefix (MEMORY USAGE on a sample, scaled per key kind). */
  readonly bytes: number;
  readonly sampled: number;
  readonly byKind: Record<string, { keys: number; bytes: number }>;
}

/**
 * MEMORY USAGE (SAMPLES 0: every element) of every `every`-th key, extrapolated per key kind by the
 * exact key counts. Exact when `every` is 1.
 */
export async function prefixMemory(redis: Redis, prefix: string, every: number): Promise<PrefixMemory> {
  const kinds = new Map<string, { keys: number; sampledKeys: number; sampledBytes: number }>();
  let n = 0;
  let sampled = 0;
  await scanPrefix(redis, prefix, async (keys) => {
    const sample: string[] = [];
    for (const k of keys) {
      const kind = kindOf(prefix, k);
      const s = kinds.get(kind) ?? { keys: 0, sampledKeys: 0, sampledBytes: 0 };
      s.keys++;
      kinds.set(kind, s);
      if (n++ % every === 0) sample.push(k);
    }
    const p = redis.pipeline();
    for (const k of sample) p.memory('USAGE', k, 'SAMPLES', 0);
    const res = (await p.exec()) ?? [];
    res.forEach(([err, bytes], i) => {
      if (err || typeof bytes !== 'number') return;
      const s = kinds.get(kindOf(prefix, sample[i] as string));
      if (!s) return;
      s.sampledKeys++;
      s.sampledBytes += bytes;
      sampled++;
    });
  });
  const byKind: Record<string, { keys: number; bytes: number }> = {};
  let bytes = 0;
  for (const [kind, s] of [...kinds].sort()) {
    const est = s.sampledKeys > 0 ? (s.sampledBytes / s.sampledKeys) * s.keys : 0;
    byKind[kind] = { keys: s.keys, bytes: est };
    bytes += est;
  }
  return { keys: n, bytes, sampled, byKind };
}

/** Deletes every key under `prefix` (SCAN + UNLINK); returns how many. */
export async function unlinkPrefix(redis: Redis, prefix: string): Promise<number> {
  let n = 0;
  await scanPrefix(redis, prefix, async (keys) => {
    for (let i = 0; i < keys.length; i += 1000) n += await redis.unlink(...keys.slice(i, i + 1000));
  });
  return n;
}

/** INFO commandstats as command → { calls, usec }. */
export async function commandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

/** Commands by server time spent between two commandstats snapshots, busiest first. */
export function commandDelta(
  a: Map<string, { calls: number; usec: number }>,
  b: Map<string, { calls: number; usec: number }>,
): Array<{ command: string; calls: number; usec: number }> {
  const out: Array<{ command: string; calls: number; usec: number }> = [];
  for (const [command, v] of b) {
    const before = a.get(command) ?? { calls: 0, usec: 0 };
    const calls = v.calls - before.calls;
    if (calls > 0) out.push({ command, calls, usec: v.usec - before.usec });
  }
  return out.sort((x, y) => y.usec - x.usec);
}

export interface IdentityFootprint {
  /** MEMORY USAGE of one identity holding three bindings and five live signals (the yardstick). */
  readonly referenceBytes: number;
  /** Over a sample of the run's identities: bytes of the state key, bindings held, signals live. */
  readonly sampled: number;
  readonly avgBytes: number;
  readonly avgBindings: number;
  readonly avgSignals: number;
}

/**
 * What one identity costs: a reference identity written through the engine's own script (three
 * bindings, five live signals of the usual kinds, one of them a SOC signal with its attributes),
 * and what the run's identities hold on average.
 */
export async function identityFootprint(
  redis: Redis,
  prefix: string,
  nowMs: number,
): Promise<IdentityFootprint> {
  const keys = keySpace(prefix);
  // The run's own client may never have loaded the engine's scripts (the engine is a child process).
  defineScripts(redis);
  const store = new StateStore(redis, keys, { keepMs: 7 * 86_400_000, stateTtlMs: 400 * 86_400_000 });
  // An identity id as long as a UUID, the usual form.
  const id = `ref-${randomUUID()}`;
  const refs = ['d', 'e', 'f'].map((c) => c.repeat(32));
  const [phone, email, device] = refs as [string, string, string];
  const raise = (
    code: SignalCode,
    scope: SignalScope,
    ref: string | null,
    ttl: number,
    attrs: Record<string, string>,
    k?: string,
  ): Mutation => ({
    t: 'r',
    k: k ?? signalKey(code, scope, ref),
    code,
    scope,
    ref,
    since: nowMs,
    exp: ttl < 0 ? -1 : nowMs + ttl,
    // Event ids as most producers write them.
    ev: randomUUID(),
    at: nowMs,
    attrs,
  });
  const DAY = 86_400_000;
  await store.apply(
    id,
    {
      mutations: [
        { t: 'b', ref: phone, at: nowMs, type: 'phone', auth: 6, rec: 2, bat: nowMs },
        { t: 'b', ref: email, at: nowMs, type: 'email', auth: 24, rec: 1, bat: nowMs },
        { t: 'b', ref: device, at: nowMs, type: 'device', auth: 192, rec: 0, bat: nowMs },
        raise('sim_swap', 'phone', phone, 14 * DAY, { changeType: 'port_out' }),
        raise('mailbox_tampered', 'email', email, 30 * DAY, {
          change: 'forwarding_rule_added',
          external: 'true',
        }),
        raise('device_new', 'device', device, 3 * DAY, { change: 'enrolled' }),
        raise('mfa_fatigue', 'identity', null, DAY, { failures: '5' }),
        raise(
          'takeover_confirmed',
          'identity',
          null,
          -1,
          { kind: 'account_takeover', severity: 'high', signalId: 'INC-2026-000123', raisedBy: 'analyst-7' },
          socKey('identity', null, 'INC-2026-000123', 'account_takeover'),
        ),
      ],
      tenant: { id: 'tenant-a', at: nowMs },
    },
    nowMs,
  );
  await store.commit(id, 0, nowMs, 'x'.repeat(16), nowMs + 3_600_000);
  const referenceBytes = Number(await redis.call('MEMORY', 'USAGE', keys.identity(id), 'SAMPLES', '0'));
  await redis.unlink(keys.identity(id));
  let sampled = 0;
  let bytes = 0;
  let bindingCount = 0;
  let signalCount = 0;
  await scanPrefix(redis, `${prefix}{i:`, async (batch) => {
    for (const k of batch.slice(0, Math.max(0, 2000 - sampled))) {
      const blob = await redis.getBuffer(k);
      if (!blob) continue;
      const record = decodeIdentity(blob);
      const state = toIdentityState(record, nowMs);
      sampled++;
      bytes += Number(await redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'));
      bindingCount += state.bindings.length;
      signalCount += state.signals.length;
    }
  });
  return {
    referenceBytes,
    sampled,
    avgBytes: sampled ? bytes / sampled : 0,
    avgBindings: sampled ? bindingCount / sampled : 0,
    avgSignals: sampled ? signalCount / sampled : 0,
  };
}
