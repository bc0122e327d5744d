import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PrerequisiteError } from './problems.ts';
import { delay, run } from './proc.ts';

/** The `java` to use: $JAVA_HOME/bin/java when set, else the one on PATH. */
export function javaBinary(): string {
  const home = process.env.JAVA_HOME;
  if (home && existsSync(path.join(home, 'bin', 'java'))) return path.join(home, 'bin', 'java');
  return 'java';
}

/** Java 17+ is needed by Kafka 4 brokers and Apicurio Registry 3.0. */
export function checkJava(): { bin: string; major: number } {
  const bin = javaBinary();
  const r = run(bin, ['-version']);
  if (r.error || r.status !== 0) {
    throw new PrerequisiteError(
      'Java 17 or newer is required to run Kafka and the schema registry, and none was found.\n' +
        '  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless\n' +
        '  or set JAVA_HOME to a JDK 17+ installation.',
    );
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.out);
  const first = Number(m?.[1] ?? 0);
  const major = first === 1 ? Number(m?.[2] ?? 0) : first;
  if (major < 17) {
    throw new PrerequisiteError(
      `Java ${major} found at ${bin}; Kafka 4 needs Java 17 or newer.\n` +
        '  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless, then set JAVA_HOME.',
    );
  }
  return { bin, major };
}

/** Maven fetches Kafka's jars and the registry archive from Maven Central. */
export function checkMaven(): string {
  const r = run('mvn', ['-v']);
  if (r.error || r.status !== 0) {
    throw new PrerequisiteError(
      'Apache Maven is required to fetch Kafka and the schema registry from Maven Central.\n' +
        '  Debian/Ubuntu: sudo apt-get install -y maven',
    );
  }
  return 'mvn';
}

function which(cmd: string): string | undefined {
  const r = run('sh', ['-c', `command -v ${cmd}`]);
  const found = r.out.trim();
  return r.status === 0 && found ? found : undefined;
}

/**
 * redis-server from Debian's package. Installed automatically only when we are root on a
 * Debian-like system and the user has not said STACK_AUTO_INSTALL=false; otherwise we say how.
 */
export async function ensureRedis(
  log: (msg: string) => void,
  opts: { lockTimeoutS: number },
): Promise<string> {
  const existing = which('redis-server');
  if (existing) return existing;
  const mayInstall =
    process.getuid?.() === 0 && process.env.STACK_AUTO_INSTALL !== 'false' && which('apt-get') !== undefined;
  if (!mayInstall) {
    throw new PrerequisiteError(
      'redis-server is not on the PATH.\n' +
        '  Debian/Ubuntu: sudo apt-get install -y redis-server\n' +
        '  or point the project at a running Redis with REDIS_URL=redis://host:port',
    );
  }
  log('redis-server missing: installing Debian package redis-server');
  const apt = {
    log,
    lockTimeoutS: opts.lockTimeoutS,
    remedy: 'apt-get update && apt-get install -y redis-server',
  };
  await aptGet([['update'], ['install', '-y', '--no-install-recommends', 'redis-server']], apt);
  const installed = which('redis-server');
  if (!installed)
    throw new PrerequisiteError('redis-server still missing after apt-get install redis-server');
  return installed;
}

/** Who holds a package-manager lock, as apt reports it. */
export interface AptLock {
  readonly file: string;
  readonly pid?: number;
  readonly command?: string;
}

/** Runs apt-get with `args`, passing each output line to `onLine` as it comes. */
export type AptRunner = (
  args: readonly string[],
  onLine: (line: string) => void,
) => Promise<{ status: number; out: string }>;

export interface AptOptions {
  readonly log: (msg: string) => void;
  /** How long to wait for another package manager (STACK_APT_LOCK_TIMEOUT_S). */
  readonly lockTimeoutS: number;
  /** The command the user should run once the lock is free, for the give-up message. */
  readonly remedy: string;
  /** Tests replace apt-get and the clock. */
  readonly runner?: AptRunner;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Waiting notices are repeated no more often than this: enough to show we are alive. */
export const APT_NOTICE_EVERY_MS = 10_000;
/** Pause before retrying a step whose lock apt does not wait for itself. */
export const APT_RETRY_MS = 2_000;

/**
 * apt-get once per step (`[['update'], ['install', …]]`), waiting for another package manager
 * (unattended-upgrades, a second apt-get) instead of failing on its lock. apt waits for the dpkg
 * locks itself with DPkg::Lock::Timeout and reports the holder once a second ("Waiting for cache
 * lock: … held by process N"), which we relay at most every 10 s. apt 2.6 ignores that timeout for
 * /var/lib/apt/lists/lock (`update`) and the archives lock, and fails at once: those steps are
 * retried here. All steps share one deadline; past it, the problem is one line saying what to run.
 */
export async function aptGet(steps: readonly (readonly string[])[], o: AptOptions): Promise<void> {
  const runner = o.runner ?? spawnAptGet;
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? delay;
  const deadline = now() + o.lockTimeoutS * 1000;
  let noticedAt = Number.NEGATIVE_INFINITY;
  let holder: AptLock | undefined;
  const remember = (lock: AptLock): AptLock => {
    // A report without a pid (a timed-out wait) must not hide the pid an earlier line named.
    if (lock.pid !== undefined || holder?.file !== lock.file) holder = lock;
    return holder;
  };
  const waiting = (lock: AptLock) => {
    const known = remember(lock);
    if (now() - noticedAt < APT_NOTICE_EVERY_MS) return;
    noticedAt = now();
    o.log(aptWaitingMessage(known, o.lockTimeoutS));
  };
  for (const args of steps) await step(args);

  async function step(args: readonly string[]): Promise<void> {
    for (;;) {
      const waitS = Math.max(0, Math.ceil((deadline - now()) / 1000));
      const r = await runner(['-q', '-o', `DPkg::Lock::Timeout=${waitS}`, ...args], (line) => {
        const lock = /^Waiting for cache lock/.test(line) ? parseAptLock(line) : undefined;
        if (lock) waiting(lock);
      });
      if (r.status === 0) return;
      // Only an error line counts: apt may have waited for a lock, got it, then failed otherwise.
      const errors = r.out
        .split('\n')
        .filter((l) => l.startsWith('E: '))
        .join('\n');
      const lock = parseAptLock(errors);
      if (!lock) throw new PrerequisiteError(aptFailedMessage(args, r.status, r.out, o.remedy));
      if (now() >= deadline)
        throw new PrerequisiteError(aptGaveUpMessage(remember(lock), o.lockTimeoutS, o.remedy));
      waiting(lock);
      await sleep(APT_RETRY_MS);
    }
  }
}

/**
 * The lock apt names in `text`, in any of its forms: "Could not get lock F. It is held by process
 * N (cmd)", the older "Could not get lock F - open (11: …)", and the messages of a timed-out wait
 * ("Unable to acquire the dpkg frontend lock (F)", "Unable to lock directory F").
 */
export function parseAptLock(text: string): AptLock | undefined {
  const held = /Could not get lock (\S+?)\.? It is held by process (\d+)(?: \(([^)]*)\))?/.exec(text);
  if (held?.[1]) {
    const lock = { file: held[1], pid: Number(held[2]) };
    return held[3] ? { ...lock, command: held[3] } : lock;
  }
  const file =
    /Could not get lock (\/\S+?)(?:\.?\s|\.?$)/m.exec(text)?.[1] ??
    /Unable to acquire the dpkg frontend lock \((\S+?)\)/.exec(text)?.[1] ??
    /Unable to lock (?:the administration )?directory \(?(\/[^\s),]+)/.exec(text)?.[1];
  return file ? { file } : undefined;
}

/** "pid 4242, unattended-upgr", or "" when apt did not say. */
function who(lock: AptLock): string {
  if (lock.pid === undefined) return '';
  return `pid ${lock.pid}${lock.command ? `, ${lock.command}` : ''}`;
}

export function aptWaitingMessage(lock: AptLock, timeoutS: number): string {
  const by = who(lock) ? ` held by ${who(lock)}` : '';
  return `waiting for another package manager to finish (${lock.file}${by}), up to ${timeoutS} s…`;
}

export function aptGaveUpMessage(lock: AptLock, timeoutS: number, remedy: string): string {
  const by = who(lock) ? ` (${who(lock)})` : '';
  return (
    `another package manager${by} still holds ${lock.file} after ${timeoutS} s ` +
    `(STACK_APT_LOCK_TIMEOUT_S); when it has finished, run: ${remedy}`
  );
}

function aptFailedMessage(args: readonly string[], status: number, out: string, remedy: string): string {
  const last = out
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('Waiting for cache lock'))
    .slice(-10)
    .map((l) => `    ${l}`)
    .join('\n');
  return `apt-get ${args.join(' ')} failed (exit ${status}):\n${last}\n  Fix the above, then run: ${remedy}`;
}

/** The real apt-get, non-interactive, its output read line by line (kept whole for messages). */
const spawnAptGet: AptRunner = (args, onLine) =>
  new Promise((resolve) => {
    const child = spawn('apt-get', args, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        out = `${out}${line}\n`.slice(-64 * 1024);
        onLine(line);
      });
    }
    child.once('error', (err) => resolve({ status: -1, out: `${out}${err.message}\n` }));
    child.once('close', (code) => resolve({ status: code ?? -1, out }));
  });
