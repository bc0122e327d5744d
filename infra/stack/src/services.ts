import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { probeBrokers } from '@assurance/kafka';
import type { StackLayout } from './layout.ts';
import { REPO_ROOT } from './layout.ts';
import { checkJava, checkMaven, ensureRedis } from './prereqs.ts';
import { logMarks, logTails, ServiceStartError, StackProblem } from './problems.ts';
import { livePid, portOpen, run, startDetached, stopPid, waitFor } from './proc.ts';

export type Log = (msg: string) => void;

/** One locally managed server: how to fetch, start, probe and stop it. */
export interface LocalService {
  readonly name: 'kafka' | 'registry' | 'redis';
  /** Connection string handed to clients. */
  endpoint(layout: StackLayout): string;
  /** Fetches binaries if needed and starts the server unless it already runs; waits for health. */
  ensure(layout: StackLayout, log: Log): Promise<{ pid: number; reused: boolean }>;
  healthy(layout: StackLayout): Promise<boolean>;
  pidFile(layout: StackLayout): string;
  marker(layout: StackLayout): string;
  logFile(layout: StackLayout): string;
}

/**
 * Waits for `s` to answer its health probe; otherwise a problem naming the service, its logs and
 * their last lines (the cause is nearly always there: a bad heap size, a corrupt data folder…).
 */
async function awaitHealthy(
  s: LocalService,
  l: StackLayout,
  pid: number,
  marks: Map<string, number>,
): Promise<void> {
  const logFiles = [...marks.keys()];
  const timeoutS = l.env.STACK_START_TIMEOUT_S;
  const outcome = await waitFor(() => s.healthy(l), pid, timeoutS * 1000);
  if (outcome === 'healthy') return;
  const what =
    outcome === 'exited'
      ? `${s.name} (pid ${pid}) exited while starting.`
      : `${s.name} (pid ${pid}) did not become healthy within ${timeoutS} s (STACK_START_TIMEOUT_S).`;
  throw new ServiceStartError(
    s.name,
    logFiles,
    `${what}\n${logTails(logFiles, { marks })}\n  npm run stack:status shows what runs; npm run stack:down stops it.`,
  );
}

function portTaken(name: string, port: number, portVar: string, endpointVar: string): StackProblem {
  return new StackProblem(
    `port ${port} for ${name} is in use by another process (not one this stack folder started).\n` +
      `  Set ${portVar} to a free port, or ${endpointVar} to use that server instead.`,
  );
}

const KAFKA_POM = path.join(REPO_ROOT, 'infra', 'kafka', 'pom.xml');
const REGISTRY_POM = path.join(REPO_ROOT, 'infra', 'registry', 'pom.xml');

/** Fetches with Maven only when the pom changed since the last fetch, so warm starts stay offline. */
function fetchOnce(pom: string, stampDir: string, fetch: () => void): void {
  const stamp = path.join(stampDir, '.fetched-from');
  const want = readFileSync(pom, 'utf8');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  mkdirSync(stampDir, { recursive: true });
  fetch();
  writeFileSync(stamp, want);
}

function mvn(args: string[], what: string): void {
  const r = run(checkMaven(), ['-q', '-B', ...args]);
  if (r.status !== 0) {
    const said = r.out
      .trimEnd()
      .split('\n')
      .slice(-15)
      .map((line) => `    ${line}`)
      .join('\n');
    throw new StackProblem(
      `Maven could not fetch ${what} from Maven Central (done once, then kept under the stack folder).\n` +
        `  It needs network access, or a mirror in ~/.m2/settings.xml. Maven said:\n${said}`,
    );
  }
}

/**
 * Kafka's jars (broker and tools) into `l.kafka.lib`, from Maven Central the first time and after
 * the pom changes: shared by the single broker and the three-node cluster (kafka-cluster.ts).
 */
export function fetchKafkaJars(l: StackLayout, log: Log): void {
  fetchOnce(KAFKA_POM, l.kafka.lib, () => {
    log('kafka: fetching broker jars from Maven Central');
    mvn(['-f', KAFKA_POM, 'dependency:copy-dependencies', `-DoutputDirectory=${l.kafka.lib}`], 'Kafka');
  });
}

export const kafka: LocalService = {
  name: 'kafka',
  endpoint: (l) => `127.0.0.1:${l.env.STACK_KAFKA_PORT}`,
  pidFile: (l) => path.join(l.kafka.home, 'kafka.pid'),
  logFile: (l) => path.join(l.kafka.logs, 'server.log'),
  marker: (l) => l.kafka.lib,
  async healthy(l) {
    if (!(await portOpen(l.env.STACK_KAFKA_PORT))) return false;
    return (await probeBrokers(this.endpoint(l), 1000)) > 0;
  },
  async ensure(l, log) {
    // Fetched even while a broker runs: the tools jars (console producer, used by tests) live here
    // too, and adding jars under a running broker changes nothing for it.
    fetchKafkaJars(l, log);
    const existing = livePid(this.pidFile(l), this.marker(l));
    if (existing !== undefined && (await this.healthy(l).catch(() => false)))
      return { pid: existing, reused: true };
    const java = checkJava();
    if (existing === undefined && (await portOpen(l.env.STACK_KAFKA_PORT)))
      throw portTaken('kafka', l.env.STACK_KAFKA_PORT, 'STACK_KAFKA_PORT', 'KAFKA_BROKERS');
    if (existing === undefined && (await portOpen(l.env.STACK_KAFKA_SECURE_PORT)))
      throw portTaken('kafka', l.env.STACK_KAFKA_SECURE_PORT, 'STACK_KAFKA_SECURE_PORT', 'KAFKA_BROKERS');
    if (existing === undefined && (await portOpen(l.env.STACK_KAFKA_MTLS_PORT)))
      throw portTaken('kafka', l.env.STACK_KAFKA_MTLS_PORT, 'STACK_KAFKA_MTLS_PORT', 'KAFKA_BROKERS');
    const props = path.join(l.kafka.home, 'server.properties');
    writeFileSync(props, kafkaProperties(l, brokerTls(l, java.bin)));
    if (!existsSync(path.join(l.kafka.data, 'meta.properties'))) {
      // A KRaft log directory must be formatted once with a cluster id before the first start.
      const clusterId = randomBytes(16).toString('base64url');
      const r = run(java.bin, [
        '-cp',
        `${l.kafka.lib}/*`,
        'kafka.tools.StorageTool',
        'format',
        // One argument with `=`: a base64url id may begin with '-', which argparse would take for a flag.
        `--cluster-id=${clusterId}`,
        '-c',
        props,
        '--standalone',
      ]);
      if (r.status !== 0)
        throw new StackProblem(
          `kafka: formatting its storage in ${l.kafka.data} failed:\n${r.out.trimEnd().slice(-3000)}`,
        );
      log(`kafka: formatted KRaft storage (cluster ${clusterId})`);
    }
    // The JVM's own complaints (heap, class path) reach stdout.log, never server.log.
    const marks = logMarks([this.logFile(l), path.join(l.kafka.logs, 'stdout.log')]);
    const pid =
      existing ??
      startDetached(
        'kafka',
        java.bin,
        [
          `-Xms256m`,
          `-Xmx${l.env.STACK_KAFKA_HEAP}`,
          '-XX:+UseG1GC',
          '-XX:MaxGCPauseMillis=20',
          '-Djava.awt.headless=true',
          `-Dlog4j2.configurationFile=${path.join(REPO_ROOT, 'infra', 'kafka', 'log4j2.yaml')}`,
          `-Dkafka.logs.dir=${l.kafka.logs}`,
          '-cp',
          `${l.kafka.lib}/*`,
          'kafka.Kafka',
          props,
        ],
        { cwd: l.kafka.home, logFile: path.join(l.kafka.logs, 'stdout.log'), pidFile: this.pidFile(l) },
      );
    await awaitHealthy(this, l, pid, marks);
    return { pid, reused: false };
  },
};

/**
 * The broker's TLS material, made once with the JDK's keytool (no other tool needed): a
 * self-signed certificate for 127.0.0.1 and localhost in a PKCS12 keystore, and the same
 * certificate as PEM (`ca.pem`) for clients to trust. Beside it, for the listeners that prove
 * other mechanisms: the password of the one SASL/PLAIN user (PLAIN users are fixed in the broker's
 * configuration), and a CA for client certificates (mutual TLS), made with openssl.
 */
export function brokerTls(l: StackLayout, javaBin: string): BrokerTls {
  const dir = path.join(l.kafka.home, 'tls');
  const keystore = path.join(dir, 'broker.p12');
  const caFile = path.join(dir, 'ca.pem');
  const passwordFile = path.join(dir, 'password');
  if (!existsSync(caFile)) {
    mkdirSync(dir, { recursive: true });
    const password = randomBytes(18).toString('base64url');
    // Next to the java that runs the broker (the same JDK); else whichever is on the PATH.
    const beside = path.join(path.dirname(javaBin), 'keytool');
    const keytool = existsSync(beside) ? beside : 'keytool';
    // Both commands name the same keystore entry; each failure says which step it was.
    const keytoolOn = (what: string, args: readonly string[]) => {
      const r = run(keytool, [...args, '-alias', 'broker', '-keystore', keystore, '-storepass', password]);
      if (r.status !== 0) throw new StackProblem(`kafka: keytool could not ${what}:\n${r.out}`);
    };
    keytoolOn("make the broker's certificate", [
      '-genkeypair',
      ...['-keyalg', 'EC', '-groupname', 'secp256r1', '-dname', 'CN=localhost'],
      ...['-ext', 'SAN=ip:127.0.0.1,dns:localhost', '-validity', '3650'],
      ...['-storetype', 'PKCS12', '-keypass', password],
    ]);
    keytoolOn("export the broker's certificate", ['-exportcert', '-rfc', '-file', caFile]);
    writeFileSync(passwordFile, password, { mode: 0o600 });
  }
  const plainFile = path.join(dir, 'plain-password');
  if (!existsSync(plainFile))
    writeFileSync(plainFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  const clientCa = { cert: path.join(dir, 'client-ca.pem'), key: path.join(dir, 'client-ca.key') };
  if (!existsSync(clientCa.cert)) {
    openssl("make the client certificates' CA", [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', clientCa.key, '-out', clientCa.cert, '-subj', '/CN=assurance-local-client-ca'],
      ...['-days', '3650'],
    ]);
  }
  return {
    keystore,
    password: readFileSync(passwordFile, 'utf8').trim(),
    caFile,
    plain: { username: PLAIN_USER, password: readFileSync(plainFile, 'utf8').trim() },
    clientCa,
  };
}

interface BrokerTls {
  readonly keystore: string;
  readonly password: string;
  readonly caFile: string;
  readonly plain: { readonly username: string; readonly password: string };
  readonly clientCa: { readonly cert: string; readonly key: string };
}

/** The broker's one SASL/PLAIN user. */
const PLAIN_USER = 'plain-user';

function openssl(what: string, args: readonly string[]): void {
  const r = run('openssl', args);
  if (r.status !== 0)
    throw new StackProblem(
      `kafka: openssl could not ${what} (the mutual-TLS listener needs openssl: apt-get install openssl):\n${r.out}`,
    );
}

/**
 * Replication of every topic and of Kafka's own: `factor` copies, writes acknowledged by `minIsr`
 * (the single broker: 1 and 1; the local cluster: 3 and 2).
 */
export function replicationProperties(factor: number, minIsr: number): string {
  return `default.replication.factor=${factor}
min.insync.replicas=${minIsr}
offsets.topic.replication.factor=${factor}
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=${factor}
transaction.state.log.min.isr=${minIsr}
share.coordinator.state.topic.replication.factor=${factor}
share.coordinator.state.topic.min.isr=${minIsr}`;
}

function kafkaProperties(l: StackLayout, tls: BrokerTls): string {
  const port = l.env.STACK_KAFKA_PORT;
  const ctl = l.env.STACK_KAFKA_CONTROLLER_PORT;
  const secure = l.env.STACK_KAFKA_SECURE_PORT;
  const mtls = l.env.STACK_KAFKA_MTLS_PORT;
  return `# Written by infra/stack on every start; edit infra/stack/src/services.ts instead.
# One combined broker+controller (KRaft) on loopback: every internal topic at replication factor 1.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:${ctl}
# PLAINTEXT for development and tests; SASL_SSL (SCRAM-SHA-512, or PLAIN for its one user, over
# TLS) and SSL with a required client certificate (mutual TLS: the principal is the certificate's
# subject, User:CN=...) where principals and ACLs matter. Connections on the PLAINTEXT listeners
# are the ANONYMOUS principal, a super user: the authorizer restrains only the others, which get
# nothing an ACL does not grant.
listeners=PLAINTEXT://127.0.0.1:${port},SASL_SSL://127.0.0.1:${secure},SSL://127.0.0.1:${mtls},CONTROLLER://127.0.0.1:${ctl}
advertised.listeners=PLAINTEXT://127.0.0.1:${port},SASL_SSL://127.0.0.1:${secure},SSL://127.0.0.1:${mtls}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${tls.plain.username}="${tls.plain.password}";
listener.name.ssl.ssl.client.auth=required
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=${tls.clientCa.cert}
ssl.keystore.type=PKCS12
ssl.keystore.location=${tls.keystore}
ssl.keystore.password=${tls.password}
ssl.key.password=${tls.password}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=false
log.dirs=${l.kafka.data}
num.partitions=3
${replicationProperties(1, 1)}
# Topics are provisioned explicitly with their configs; a typo must not create a topic.
auto.create.topics.enable=false
delete.topic.enable=true
# Tests create and join many groups: do not wait for more members that will never come.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.cleaner.threads=1
log.cleaner.backoff.ms=5000
message.max.bytes=1048588
`;
}

export const registry: LocalService = {
  name: 'registry',
  endpoint: (l) => `http://127.0.0.1:${l.env.STACK_REGISTRY_PORT}/apis/ccompat/v7`,
  pidFile: (l) => path.join(l.registry.home, 'registry.pid'),
  logFile: (l) => path.join(l.registry.logs, 'registry.log'),
  marker: (l) => l.registry.dist,
  async healthy(l) {
    const base = `http://127.0.0.1:${l.env.STACK_REGISTRY_PORT}`;
    const ready = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(2000) });
    if (!ready.ok) return false;
    const subjects = await fetch(`${this.endpoint(l)}/subjects`, { signal: AbortSignal.timeout(2000) });
    return subjects.ok;
  },
  async ensure(l, log) {
    const existing = livePid(this.pidFile(l), this.marker(l));
    if (existing !== undefined && (await this.healthy(l).catch(() => false)))
      return { pid: existing, reused: true };
    const java = checkJava();
    const archiveDir = path.join(l.registry.home, 'archive');
    fetchOnce(REGISTRY_POM, l.registry.dist, () => {
      log('registry: fetching Apicurio Registry from Maven Central');
      mvn(['-f', REGISTRY_POM, 'dependency:copy', `-DoutputDirectory=${archiveDir}`], 'Apicurio Registry');
      const r = run('sh', [
        '-c',
        `rm -rf "$1"/* && tar xzf "$2"/*.tar.gz -C "$1"`,
        'sh',
        l.registry.dist,
        archiveDir,
      ]);
      if (r.status !== 0)
        throw new StackProblem(
          `registry: unpacking the archive from ${archiveDir} failed:\n${r.out.trimEnd()}`,
        );
    });
    if (existing === undefined && (await portOpen(l.env.STACK_REGISTRY_PORT)))
      throw portTaken(
        'the registry',
        l.env.STACK_REGISTRY_PORT,
        'STACK_REGISTRY_PORT',
        'SCHEMA_REGISTRY_URL',
      );
    const runner = run('sh', ['-c', `ls "$1"/*-runner.jar`, 'sh', l.registry.dist]).out.trim().split('\n')[0];
    if (!runner)
      throw new StackProblem(
        `registry: no runner jar in ${l.registry.dist}; delete ${l.registry.dist}/.fetched-from to fetch it again.`,
      );
    mkdirSync(l.registry.data, { recursive: true });
    const marks = logMarks([this.logFile(l)]);
    const pid =
      existing ??
      startDetached(
        'registry',
        java.bin,
        [
          `-Xmx${l.env.STACK_REGISTRY_HEAP}`,
          '-XX:+UseSerialGC',
          '-Djava.awt.headless=true',
          '-Dquarkus.http.host=127.0.0.1',
          `-Dquarkus.http.port=${l.env.STACK_REGISTRY_PORT}`,
          // On-disk H2: schema ids must survive a restart, or every encoded message would orphan.
          `-Dapicurio.datasource.url=jdbc:h2:file:${path.join(l.registry.data, 'registry')}`,
          '-Dapicurio.datasource.jdbc.initial-size=2',
          '-Dapicurio.datasource.jdbc.min-size=2',
          '-Dapicurio.datasource.jdbc.max-size=16',
          '-Dapicurio.rest.deletion.artifact.enabled=true',
          '-Dapicurio.rest.deletion.artifact-version.enabled=true',
          '-Dapicurio.rest.deletion.group.enabled=true',
          '-jar',
          runner,
        ],
        { cwd: l.registry.home, logFile: this.logFile(l), pidFile: this.pidFile(l) },
      );
    await awaitHealthy(this, l, pid, marks);
    return { pid, reused: false };
  },
};

export const redis: LocalService = {
  name: 'redis',
  endpoint: (l) => `redis://127.0.0.1:${l.env.STACK_REDIS_PORT}`,
  pidFile: (l) => path.join(l.redis.home, 'redis.pid'),
  logFile: (l) => path.join(l.redis.logs, 'redis.log'),
  // redis-server rewrites its process title to "redis-server 127.0.0.1:<port>".
  marker: (l) => `127.0.0.1:${l.env.STACK_REDIS_PORT}`,
  healthy: (l) => redisPing(l.env.STACK_REDIS_PORT),
  async ensure(l, log) {
    const existing = livePid(this.pidFile(l), this.marker(l));
    if (existing !== undefined && (await this.healthy(l).catch(() => false)))
      return { pid: existing, reused: true };
    const bin = await ensureRedis(log, { lockTimeoutS: l.env.STACK_APT_LOCK_TIMEOUT_S });
    if (existing === undefined && (await portOpen(l.env.STACK_REDIS_PORT)))
      throw portTaken('redis', l.env.STACK_REDIS_PORT, 'STACK_REDIS_PORT', 'REDIS_URL');
    mkdirSync(l.redis.data, { recursive: true });
    const marks = logMarks([this.logFile(l)]);
    const pid =
      existing ??
      startDetached(
        'redis',
        bin,
        [
          '--bind',
          '127.0.0.1',
          '--port',
          String(l.env.STACK_REDIS_PORT),
          '--dir',
          l.redis.data,
          '--appendonly',
          'yes',
          '--appendfsync',
          'everysec',
          '--save',
          '',
          '--daemonize',
          'no',
          '--protected-mode',
          'yes',
        ],
        { cwd: l.redis.home, logFile: this.logFile(l), pidFile: this.pidFile(l) },
      );
    await awaitHealthy(this, l, pid, marks);
    return { pid, reused: false };
  },
};

/** Speaks just enough RESP to ask for PONG, so the probe needs no Redis client. */
function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
    socket.once('error', () => done(false));
  });
}

export const SERVICES: readonly LocalService[] = [kafka, registry, redis];

export async function stopService(s: LocalService, l: StackLayout): Promise<boolean> {
  const pid = livePid(s.pidFile(l), s.marker(l));
  if (pid === undefined) return false;
  await stopPid(pid);
  return true;
}

/**
 * The local broker's secured listeners, for tests of principals and ACLs: the SASL_SSL address (with
 * a way to create SCRAM-SHA-512 users: Kafka's own ConfigCommand over the PLAINTEXT listener, whose
 * principal is a super user, and the one PLAIN user), the mutual-TLS address with a way to issue
 * client certificates from the stack's client CA, and the CA file that verifies the broker.
 */
export function secureKafka(l: StackLayout): {
  brokers: string;
  mtlsBrokers: string;
  caFile: string;
  plain: { username: string; password: string };
  addScramUser(name: string, password: string): void;
  /** A client certificate and key (PEM text) whose principal is `User:CN=<cn>`. */
  issueClientCert(cn: string): { cert: string; key: string };
} {
  const java = checkJava();
  const tls = brokerTls(l, java.bin);
  return {
    brokers: `127.0.0.1:${l.env.STACK_KAFKA_SECURE_PORT}`,
    mtlsBrokers: `127.0.0.1:${l.env.STACK_KAFKA_MTLS_PORT}`,
    caFile: tls.caFile,
    plain: { ...tls.plain },
    issueClientCert(cn) {
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(cn)) throw new Error(`not a simple common name: ${cn}`);
      const dir = path.join(path.dirname(tls.caFile), 'clients');
      mkdirSync(dir, { recursive: true });
      const [key, csr, cert] = ['key', 'csr', 'pem'].map((ext) => path.join(dir, `${cn}.${ext}`)) as [
        string,
        string,
        string,
      ];
      openssl(`make a key for ${cn}`, [
        ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', key, '-out', csr, '-subj', `/CN=${cn}`],
      ]);
      openssl(`sign a certificate for ${cn}`, [
        ...['x509', '-req', '-in', csr, '-CA', tls.clientCa.cert, '-CAkey', tls.clientCa.key],
        ...['-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '30', '-out', cert],
      ]);
      return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
    },
    addScramUser(name, password) {
      const r = run(java.bin, [
        '-cp',
        `${l.kafka.lib}/*`,
        'kafka.admin.ConfigCommand',
        '--bootstrap-server',
        `127.0.0.1:${l.env.STACK_KAFKA_PORT}`,
        '--alter',
        '--add-config',
        `SCRAM-SHA-512=[iterations=4096,password=${password}]`,
        '--entity-type',
        'users',
        '--entity-name',
        name,
      ]);
      if (r.status !== 0)
        throw new StackProblem(`kafka: could not add SCRAM user ${name}:\n${r.out.slice(-2000)}`);
    },
  };
}
