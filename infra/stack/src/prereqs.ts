import { existsSync } from 'node:fs';
import path from 'node:path';
import { PrerequisiteError } from './problems.ts';
import { run } from './proc.ts';

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
export function ensureRedis(log: (msg: string) => void): string {
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
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', 'redis-server'],
  ]) {
    const r = run('apt-get', args, { env });
    if (r.status !== 0)
      throw new PrerequisiteError(`apt-get ${args.join(' ')} failed:\n${r.out.slice(-2000)}`);
  }
  const installed = which('redis-server');
  if (!installed)
    throw new PrerequisiteError('redis-server still missing after apt-get install redis-server');
  return installed;
}
