/**
 * Runs the engine and the API as child processes for `npm start` and `npm run serve`:
 * - each child lives in its own process group, so Ctrl-C reaches only this supervisor, which stops
 *   the children once, in order, within a bound (SIGKILL after it);
 * - each child watches its stdin (ASSURANCE_SUPERVISED=1): if this supervisor dies, even by
 *   SIGKILL, the pipe closes and the child stops cleanly, leaving its consumer groups at once;
 * - a child that exits by itself is restarted with a growing backoff, and the other one keeps
 *   running (the API reports the engine as down meanwhile instead of disappearing with it).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface ChildSpec {
  readonly name: string;
  /** Entry point, relative to the repository root. */
  readonly main: string;
  readonly env: NodeJS.ProcessEnv;
}

const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];
/** A child that ran this long before exiting starts again from the shortest backoff. */
const HEALTHY_RUN_MS = 60_000;

export class Supervisor {
  readonly #specs: readonly ChildSpec[];
  readonly #log: (m: string) => void;
  readonly #children = new Map<string, ChildProcess>();
  readonly #restarts = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopping: Promise<void> | undefined;

  constructor(specs: readonly ChildSpec[], log: (m: string) => void) {
    this.#specs = specs;
    this.#log = log;
  }

  start(): void {
    for (const spec of this.#specs) this.#spawn(spec);
  }

  #spawn(spec: ChildSpec): void {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [spec.main], {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { ...spec.env, ASSURANCE_SUPERVISED: '1' },
      stdio: ['pipe', 'inherit', 'inherit'],
      detached: true,
    });
    this.#children.set(spec.name, child);
    child.on('exit', (code, signal) => {
      if (this.#children.get(spec.name) === child) this.#children.delete(spec.name);
      if (this.#stopping) return;
      const attempt = Date.now() - startedAt > HEALTHY_RUN_MS ? 0 : (this.#restarts.get(spec.name) ?? 0);
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] as number;
      this.#restarts.set(spec.name, attempt + 1);
      this.#log(
        `${spec.name} exited (${signal ?? `code ${code}`}); restarting in ${wait / 1000} s (the other services keep running)`,
      );
      const t = setTimeout(() => {
        this.#timers.delete(t);
        if (!this.#stopping) this.#spawn(spec);
      }, wait);
      this.#timers.add(t);
    });
  }

  /** Stops every child: SIGTERM, then SIGKILL for any still running after `graceMs`. */
  stop(graceMs = 2500): Promise<void> {
    this.#stopping ??= (async () => {
      for (const t of this.#timers) clearTimeout(t);
      const running = [...this.#children.values()].filter(
        (c) => c.exitCode === null && c.signalCode === null,
      );
      const exits = running.map((c) => once(c, 'exit'));
      for (const c of running) c.kill('SIGTERM');
      const late = setTimeout(() => {
        for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, graceMs);
      await Promise.all(exits);
      clearTimeout(late);
    })();
    return this.#stopping;
  }
}

/** Who holds a pipeline lock: written as JSON into the lock file. */
export interface LockOwner {
  readonly pid: number;
  readonly command: string;
  readonly startedAt: string;
  readonly api: string;
}

/** The lock's owner still runs, and is one of our scripts (a reused pid belongs to someone else). */
function alive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const cmdline = `/proc/${owner.pid}/cmdline`;
  if (!existsSync(cmdline)) return true;
  return readFileSync(cmdline, 'utf8').includes(owner.command);
}

/**
 * One `npm start` or `npm run serve` per consumer group: a second one would join the same groups,
 * trigger rebalances and split the partitions with the first without a word. Returns the owner
 * already running, or undefined once this process holds the lock (released when it exits).
 */
export function acquirePipelineLock(file: string, me: LockOwner): LockOwner | undefined {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      process.on('exit', () => {
        try {
          if ((JSON.parse(readFileSync(file, 'utf8')) as LockOwner).pid === process.pid) unlinkSync(file);
        } catch {
          // Already gone: nothing to release.
        }
      });
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
    } catch {
      owner = undefined;
    }
    if (owner && alive(owner)) return owner;
    // The previous run ended without releasing it (killed): the lock is stale.
    if (existsSync(file)) unlinkSync(file);
  }
  throw new Error(`could not take the pipeline lock ${file}`);
}
