/**
 * CPU accounting per process from /proc (Linux), so each phase can say who burned the cores:
 * the engine child, Kafka, the registry, Redis, the benchmark itself, and the machine as a whole.
 * Elsewhere (no /proc) every figure is simply absent.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat; 100 on every mainstream Linux build. */
const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far, or undefined. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine, summed over cores. */
export function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
  } catch {
    return undefined;
  }
}

export interface CpuSnapshot {
  readonly atMs: number;
  readonly procs: Record<string, number | undefined>;
  readonly machine: { busy: number; total: number } | undefined;
}

/** Named pids to watch; `self` is this process. */
export function snapshot(pids: Record<string, number | undefined>): CpuSnapshot {
  const procs: Record<string, number | undefined> = {};
  for (const [name, pid] of Object.entries(pids)) {
    procs[name] = pid === undefined ? undefined : processCpuSeconds(pid);
  }
  const self = process.cpuUsage();
  procs.bench = (self.user + self.system) / 1e6;
  return { atMs: performance.now(), procs, machine: machineCpu() };
}

/** Per process: share of one core used between two snapshots (1.0 = one full core). */
export function cpuBetween(
  a: CpuSnapshot,
  b: CpuSnapshot,
): { cores: Record<string, number>; machine?: number } {
  const wall = (b.atMs - a.atMs) / 1000;
  const cores: Record<string, number> = {};
  for (const [name, v] of Object.entries(b.procs)) {
    const before = a.procs[name];
    if (v !== undefined && before !== undefined && wall > 0) cores[name] = (v - before) / wall;
  }
  const out: { cores: Record<string, number>; machine?: number } = { cores };
  if (a.machine && b.machine && b.machine.total > a.machine.total) {
    out.machine = (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total);
  }
  return out;
}
