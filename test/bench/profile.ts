/**
 * Summarises a V8 .cpuprofile (written by the engine child under `--profile`): self time by
 * function and by package, so a bottleneck shows up with evidence rather than a guess.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: number[];
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** totalMs minus (idle) and (program); shares below are of this. */
  readonly busyMs: number;
  readonly functions: Array<{ name: string; ms: number; share: number }>;
  readonly packages: Array<{ name: string; ms: number; share: number }>;
}

/** `node_modules/<pkg>`, our workspace folder, `node:` internals, or the V8 pseudo-frames. */
function packageOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return 'node:internals';
  const m = /\/(packages|services|schemas)\/([^/]+)?/.exec(url);
  if (m) return m[1] === 'schemas' ? 'schemas' : `${m[1]}/${m[2]}`;
  return url;
}

export function summariseProfiles(dir: string, top = 25): ProfileSummary | undefined {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return undefined;
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const totalMs = (p.endTime - p.startTime) / 1000;
  const perSampleMs = p.samples.length > 0 ? totalMs / p.samples.length : 0;
  const hits = new Map<number, number>();
  for (const s of p.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  for (const n of p.nodes) {
    const h = hits.get(n.id) ?? n.hitCount ?? 0;
    if (h === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const short = url ? `${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'} ${short}`.trim();
    byFn.set(name, (byFn.get(name) ?? 0) + h * perSampleMs);
    const pkg = packageOf(url, functionName);
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + h * perSampleMs);
  }
  // Shares of busy time: the engine idles between phases, which says nothing about its hot spots.
  const idleMs = (byFn.get('(idle)') ?? 0) + (byFn.get('(program)') ?? 0);
  byFn.delete('(idle)');
  byFn.delete('(program)');
  byPkg.delete('(idle)');
  byPkg.delete('(program)');
  const busyMs = totalMs - idleMs;
  const rank = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms, share: busyMs > 0 ? ms / busyMs : 0 }));
  return {
    file: join(dir, file),
    totalMs,
    busyMs,
    functions: rank(byFn, top),
    packages: rank(byPkg, 14),
  };
}
