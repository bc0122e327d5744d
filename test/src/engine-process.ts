import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { EngineConfig } from '@assurance/engine';
import { EngineConfigSchema } from '@assurance/engine';
import { REPO_ROOT } from '@assurance/stack';

/** The engine as a real process (services/engine/src/main.ts), so a test can SIGKILL it. */
export class EngineProcess {
  readonly #child: ChildProcess;
  readonly output: string[] = [];

  readonly #keep: number;

  /** `keep`: how many output chunks to keep (the last 200 by default; Infinity keeps all). */
  constructor(config: EngineConfig, options: { keep?: number } = {}) {
    this.#keep = options.keep ?? 200;
    const env: NodeJS.ProcessEnv = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' };
    // The engine watches its stdin as supervised children do: if this test process dies (a runner
    // killing a hung file), the engine stops too instead of consuming a test stack's topics forever.
    env.ASSURANCE_SUPERVISED = '1';
    for (const [k, v] of Object.entries(config)) {
      if (v !== undefined) env[k] = typeof v === 'number' ? `${v}ms` : String(v);
    }
    // Durations are parsed from strings; numbers that are not durations go back as plain numbers.
    for (const k of [
      'INTERNAL_PARTITIONS',
      'MAX_MESSAGE_BYTES',
      'CONSUMER_CONCURRENCY',
      'METRICS_PORT',
      'DLQ_MAX_BYTES',
      'MAX_BATCH_DECOMPRESSED_BYTES',
      'FANOUT_PAGE_SIZE',
    ] as const) {
      env[k] = String(config[k]);
    }
    // The child must run with exactly this configuration: a field this mapping gets wrong fails here.
    const reparsed = EngineConfigSchema.safeParse(env);
    if (!reparsed.success || !isDeepStrictEqual(reparsed.data, config)) {
      throw new Error(
        `EngineProcess cannot pass this configuration through the environment: ${reparsed.success ? 'values differ' : reparsed.error.message}`,
      );
    }
    this.#child = spawn(process.execPath, [path.join(REPO_ROOT, 'services/engine/src/main.ts')], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Never written to; closing it is the parent's death notice.
    this.#child.stdin?.on('error', () => {});
    const keep = (b: Buffer) => {
      this.output.push(b.toString());
      if (this.output.length > this.#keep) this.output.shift();
    };
    this.#child.stdout?.on('data', keep);
    this.#child.stderr?.on('data', keep);
  }

  /** Resolves with the exit code once the process is gone. */
  get exited(): Promise<number | null> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
      return Promise.resolve(this.#child.exitCode);
    }
    return once(this.#child, 'exit').then(([code]) => code as number | null);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** SIGKILL: the batch in flight is neither finished nor committed. */
  async kill(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const gone = once(this.#child, 'exit');
    this.#child.kill('SIGKILL');
    await gone;
  }

  /** SIGTERM and wait for a clean exit code. */
  async stop(): Promise<number | null> {
    if (this.#child.exitCode !== null) return this.#child.exitCode;
    const gone = once(this.#child, 'exit') as Promise<[number | null]>;
    this.#child.kill('SIGTERM');
    const [code] = await gone;
    return code;
  }
}
