/**
 * Redis figures for the report (memory per identity, command time per phase) and the cleanup of
 * the run's keys. Everything is scoped to the run's key prefix, except INFO, which is server-wide.
 */
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

/** `{i:ID}:meta` → `identity:meta`, `{c:REF}:members` → `channel:members`, `{sweep}:due` → `sweep:due`. */
function kindOf(prefix: string, key: string): string {
  const rest = key.slice(prefix.length);
  const close = rest.indexOf('}');
  const tag = rest.startsWith('{i:') ? 'identity' : rest.startsWith('{c:') ? 'channel' : rest.slice(1, close);
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
