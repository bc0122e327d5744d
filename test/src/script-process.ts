import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import path from 'node:path';
import { REPO_ROOT } from '@assurance/stack';

/**
 * One of the repository's scripts (`scripts/start.ts`, `scripts/serve.ts`) as a real process in
 * its own process group, as a user's terminal would run it: its output is collected, a test can
 * wait for a line, send Ctrl-C (SIGINT to the group) or kill the whole group outright.
 */
export class ScriptProcess {
  readonly child: ChildProcessWithoutNullStreams;
  output = '';
  readonly #events = new EventEmitter();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
  /** Resolves when nobody writes to the script's output any more (its children included). */
  readonly closed: Promise<void>;
  #ended = false;

  constructor(script: string, env: NodeJS.ProcessEnv, args: readonly string[] = []) {
    this.child = spawn(process.execPath, [path.join(REPO_ROOT, script), ...args], {
      cwd: REPO_ROOT,
      env,
      detached: true,
      stdio: 'pipe',
    });
    const collect = (b: Buffer) => {
      this.output += b.toString();
      this.#events.emit('output', this.output);
    };
    this.child.stdout.on('data', collect);
    this.child.stderr.on('data', collect);
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      atMs: Date.now(),
    }));
    // 'close', not 'exit': children that inherited the pipes may still write after the script died.
    this.closed = once(this.child, 'close').then(() => {
      this.#ended = true;
      this.#events.emit('output', this.output);
    });
    this.#events.setMaxListeners(50);
  }

  /** Resolves once the output matches `pattern`; rejects once nothing can write to it any more. */
  waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pattern.test(this.output)) {
          done();
          resolve(this.output);
        } else if (this.#ended) {
          done();
          reject(new Error(`ended before printing ${pattern}:\n${this.output.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output.slice(-3000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#events.off('output', check);
      };
      this.#events.on('output', check);
      check();
    });
  }

  /** Ctrl-C: SIGINT to the process group, as a terminal sends it. */
  interrupt(): void {
    if (this.child.pid) process.kill(-this.child.pid, 'SIGINT');
  }

  /** SIGKILL to the script's whole process group (its supervised children have groups of their own). */
  kill(): void {
    if (!this.child.pid || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
