import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createAssuranceClient, type TopicClientOptions } from '@assurance/client';
import { createLogger } from '@assurance/core';
import { type Engine, startEngine } from '@assurance/engine';
import { createAdmin, createKafka, parseBrokers, provision, RegistryCodec } from '@assurance/kafka';
import { loadPolicyFile } from '@assurance/policy';
import { topicNames } from '@assurance/schemas';
import { resolveLayout, secureKafka } from '@assurance/stack';
import kafkajs from 'kafkajs';
import { uniqueName } from '../src/harness.ts';
import { envelope, isolatedConfig, TEST_PUBLIC_KEY } from '../src/pipeline.ts';
import { pollUntil } from '../src/wait.ts';

/*
 * The pipeline over the broker's secured listeners with ACLs from KRaft's StandardAuthorizer:
 * SASL_SSL (SCRAM-SHA-512 over TLS, the local stack's own CA) for an engine principal, an app
 * principal that may only read decisions, and a SOC principal that may only write compromise
 * signals; SASL/PLAIN for a second SOC; mutual TLS for a second app, whose principal is its
 * certificate's subject. Every other write is denied by the broker, and a client certificate the
 * stack's client CA did not sign is refused.
 */

// kafkajs is CommonJS: its enums come off the default export.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes } =
  kafkajs;
type AclOperationTypes = kafkajs.AclOperationTypes;
type AclResourceTypes = kafkajs.AclResourceTypes;
type ResourcePatternTypes = kafkajs.ResourcePatternTypes;

const logger = createLogger('test-acl', process.env.TEST_LOG_LEVEL ?? 'warn');
const policy = loadPolicyFile();
const secure = secureKafka(resolveLayout());
const ca = readFileSync(secure.caFile, 'utf8');
const users = {
  engine: { name: uniqueName('engine'), password: randomBytes(12).toString('hex') },
  app: { name: uniqueName('app'), password: randomBytes(12).toString('hex') },
  soc: { name: uniqueName('soc'), password: randomBytes(12).toString('hex') },
};
type Who = keyof typeof users;
/** A SOC on SASL/PLAIN (the broker's one PLAIN user) and an app on mutual TLS (its certificate's subject). */
const plainSoc = secure.plain;
const mtlsApp = uniqueName('app-mtls');
const mtlsIdentity = secure.issueClientCert(mtlsApp);
const principal = (who: Who | 'plainSoc' | 'mtlsApp') =>
  who === 'plainSoc'
    ? `User:${plainSoc.username}`
    : who === 'mtlsApp'
      ? `User:CN=${mtlsApp}`
      : `User:${users[who].name}`;

let engine: Engine | undefined;
let config: Awaited<ReturnType<typeof isolatedConfig>>;
let topics: ReturnType<typeof topicNames>;

/** A raw kafkajs client as `who` on the secure listener (the test reads and writes as others would). */
const as = (who: Who, password = users[who].password) =>
  new Kafka({
    clientId: `acl-${who}`,
    brokers: [secure.brokers],
    ssl: { ca },
    sasl: { mechanism: 'scram-sha-512', username: users[who].name, password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });

/** The SOC over SASL/PLAIN, and the app over mutual TLS (no SASL: the certificate is the principal). */
const overPlain = () =>
  new Kafka({
    clientId: 'acl-plain-soc',
    brokers: [secure.brokers],
    ssl: { ca },
    sasl: { mechanism: 'plain', ...plainSoc },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
const overMtls = (identity: { cert?: string; key?: string } = mtlsIdentity) =>
  new Kafka({
    clientId: 'acl-mtls-app',
    brokers: [secure.mtlsBrokers],
    ssl: { ca, ...identity },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });

/** A certificate no CA the broker trusts signed (the subject of an ACL-holding principal, even). */
function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'acl-stranger-'));
  try {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
        ...['-subj', `/CN=${mtlsApp}`, '-days', '1'],
      ],
      { stdio: 'pipe' },
    );
    return {
      cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'),
      key: readFileSync(path.join(dir, 'key.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function send(who: Who | kafkajs.Kafka, topic: string, key: string, value: object): Promise<void> {
  const kafka = typeof who === 'string' ? as(who) : who;
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
  await producer.connect();
  try {
    await producer.send({ topic, messages: [{ key, value: JSON.stringify(value) }] });
  } finally {
    await producer.disconnect();
  }
}

async function denied(who: Who | kafkajs.Kafka, topic: string, name = String(who)): Promise<void> {
  await assert.rejects(send(who, topic, 'k', { x: 1 }), (err: Error & { type?: string }) => {
    assert.match(
      `${err.type ?? ''} ${err.message}`,
      /TOPIC_AUTHORIZATION_FAILED|not authorized/i,
      `${name} → ${topic}`,
    );
    return true;
  });
}

before(async () => {
  const [host = '', port = ''] = secure.brokers.split(':');
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = connect({ host, port: Number(port) }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
  assert.ok(
    reachable,
    `the native stack's SASL_SSL listener (${secure.brokers}, STACK_KAFKA_SECURE_PORT) is not reachable: a broker started by an older version of the stack lacks it (npm run stack:down && npm run stack:up)`,
  );
  const base = await isolatedConfig();
  topics = topicNames(base.TOPIC_NAMESPACE);
  const ns = `${base.TOPIC_NAMESPACE}.`;
  // As the super user on the PLAINTEXT listener: topics, schemas, users, ACLs.
  const plain = createKafka({ brokers: parseBrokers(base.KAFKA_BROKERS), clientId: 'acl-setup', logger });
  const admin = await createAdmin(plain);
  try {
    await provision({
      admin,
      codec: new RegistryCodec({ url: base.SCHEMA_REGISTRY_URL }),
      topics,
      internalPartitions: base.INTERNAL_PARTITIONS,
    });
  } finally {
    await admin.close();
  }
  for (const u of Object.values(users)) secure.addScramUser(u.name, u.password);
  const allow = (
    who: Who | 'plainSoc' | 'mtlsApp',
    resourceType: AclResourceTypes,
    resourceName: string,
    pattern: ResourcePatternTypes,
    operation: AclOperationTypes,
  ) => ({
    principal: principal(who),
    host: '*',
    resourceType,
    resourceName,
    resourcePatternType: pattern,
    operation,
    permissionType: AclPermissionTypes.ALLOW,
  });
  const raw = new Kafka({
    clientId: 'acl-setup',
    brokers: parseBrokers(base.KAFKA_BROKERS),
    logLevel: logLevel.NOTHING,
  });
  const acls = raw.admin();
  await acls.connect();
  try {
    await acls.createAcls({
      acl: [
        // The engine: everything under its namespace and its groups.
        allow('engine', AclResourceTypes.TOPIC, ns, ResourcePatternTypes.PREFIXED, AclOperationTypes.ALL),
        allow(
          'engine',
          AclResourceTypes.GROUP,
          base.ENGINE_GROUP_ID,
          ResourcePatternTypes.PREFIXED,
          AclOperationTypes.ALL,
        ),
        // An app: read the decisions, in groups of its own.
        allow(
          'app',
          AclResourceTypes.TOPIC,
          topics.decisions,
          ResourcePatternTypes.LITERAL,
          AclOperationTypes.READ,
        ),
        allow(
          'app',
          AclResourceTypes.TOPIC,
          topics.decisions,
          ResourcePatternTypes.LITERAL,
          AclOperationTypes.DESCRIBE,
        ),
        allow(
          'app',
          AclResourceTypes.GROUP,
          'app-view',
          ResourcePatternTypes.PREFIXED,
          AclOperationTypes.ALL,
        ),
        // Its engine watch: the engine's offsets (end offsets of every topic, the stages' committed
        // offsets), never a message.
        allow('app', AclResourceTypes.TOPIC, ns, ResourcePatternTypes.PREFIXED, AclOperationTypes.DESCRIBE),
        allow(
          'app',
          AclResourceTypes.GROUP,
          base.ENGINE_GROUP_ID,
          ResourcePatternTypes.PREFIXED,
          AclOperationTypes.DESCRIBE,
        ),
        // The same app's rights for the one on mutual TLS, and the SOC's for the one on PLAIN.
        ...[
          [AclResourceTypes.TOPIC, topics.decisions, ResourcePatternTypes.LITERAL, AclOperationTypes.READ],
          [
            AclResourceTypes.TOPIC,
            topics.decisions,
            ResourcePatternTypes.LITERAL,
            AclOperationTypes.DESCRIBE,
          ],
          [AclResourceTypes.GROUP, 'app-mtls', ResourcePatternTypes.PREFIXED, AclOperationTypes.ALL],
          [AclResourceTypes.TOPIC, ns, ResourcePatternTypes.PREFIXED, AclOperationTypes.DESCRIBE],
          [
            AclResourceTypes.GROUP,
            base.ENGINE_GROUP_ID,
            ResourcePatternTypes.PREFIXED,
            AclOperationTypes.DESCRIBE,
          ],
        ].map(([type, name, pattern, op]) =>
          allow(
            'mtlsApp',
            type as AclResourceTypes,
            name as string,
            pattern as ResourcePatternTypes,
            op as AclOperationTypes,
          ),
        ),
        allow(
          'plainSoc',
          AclResourceTypes.TOPIC,
          topics.compromiseSignal,
          ResourcePatternTypes.LITERAL,
          AclOperationTypes.WRITE,
        ),
        allow(
          'plainSoc',
          AclResourceTypes.TOPIC,
          topics.compromiseSignal,
          ResourcePatternTypes.LITERAL,
          AclOperationTypes.DESCRIBE,
        ),
        // The SOC: write compromise signals, nothing else.
        allow(
          'soc',
          AclResourceTypes.TOPIC,
          topics.compromiseSignal,
          ResourcePatternTypes.LITERAL,
          AclOperationTypes.WRITE,
        ),
        allow(
          'soc',
          AclResourceTypes.TOPIC,
          topics.compromiseSignal,
          ResourcePatternTypes.LITERAL,
          AclOperationTypes.DESCRIBE,
        ),
      ],
    });
  } finally {
    await acls.disconnect();
  }
  config = await isolatedConfig({
    TOPIC_NAMESPACE: base.TOPIC_NAMESPACE,
    ENGINE_GROUP_ID: base.ENGINE_GROUP_ID,
    KAFKA_BROKERS: secure.brokers,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: users.engine.name,
    KAFKA_SASL_PASSWORD: users.engine.password,
    KAFKA_TLS_CA_FILE: secure.caFile,
  });
  // ACLs reach the broker's authorizer through the metadata log, a moment after they are created:
  // wait until the engine's principal may describe its topics, then start it once.
  await pollUntil(
    async () => {
      const probe = as('engine').admin();
      await probe.connect();
      try {
        await probe.fetchTopicOffsets(topics.decisions);
        return true;
      } finally {
        await probe.disconnect();
      }
    },
    30_000,
    () => "the engine principal's ACLs to take effect",
    200,
  );
  engine = await startEngine(config, logger);
});

after(async () => {
  await engine?.stop();
});

/** A SOC raises a takeover of a fresh identity through `kafka`; returns the identity. */
async function raiseTakeover(kafka: kafkajs.Kafka): Promise<string> {
  const id = uniqueName('acl-id');
  await send(kafka, topics.compromiseSignal, `identity:${id}`, {
    ...envelope(),
    signalId: `INC-${id}`,
    op: 'raise',
    subject: { type: 'identity', value: id },
    kind: 'account_takeover',
    severity: 'critical',
    raisedBy: 'soc',
  });
  return id;
}

/** An app's topic client, connected as `connection` says, sees the engine's signed hold for `id`. */
async function seesHold(
  id: string,
  connection: Pick<TopicClientOptions, 'brokers' | 'groupIdPrefix' | 'sasl' | 'tls'>,
): Promise<void> {
  const client = createAssuranceClient({
    mode: 'topic',
    policy,
    logger,
    namespace: config.TOPIC_NAMESPACE,
    engineGroupId: config.ENGINE_GROUP_ID,
    decisionKeys: [TEST_PUBLIC_KEY],
    ...connection,
  });
  try {
    await client.ready({ timeoutMs: 30_000 });
    const held = await pollUntil(
      async () => {
        const a = await client.requirementFor(id, 'payout.change');
        return a.sequence > 0 ? a : undefined;
      },
      30_000,
      () => `the takeover decision to reach the app on ${String(connection.brokers)}`,
      100,
    );
    assert.equal(held.degraded, false);
    assert.equal(held.requirement.outcome, 'hold');
  } finally {
    await client.close();
  }
}

test('over SCRAM and TLS, the SOC raises a takeover, the engine decides, and an app reads the signed decision', async () => {
  const id = await raiseTakeover(as('soc'));
  await seesHold(id, {
    brokers: secure.brokers,
    groupIdPrefix: 'app-view',
    sasl: { mechanism: 'scram-sha-512', username: users.app.name, password: users.app.password },
    tls: { ca },
  });
});

test("the broker denies every write outside a principal's grants", async () => {
  // An app may not write decisions (nor signals); the SOC may not write decisions, the internal
  // topic, the audit trail or another input; neither may touch the dead letters.
  await denied('app', topics.decisions);
  await denied('app', topics.compromiseSignal);
  await denied('soc', topics.decisions);
  await denied('soc', topics.identityEvents);
  await denied('soc', topics.audit);
  await denied('soc', topics.login);
  await denied('soc', topics.dlq);
  await denied('app', topics.dlq);
});

test("over SASL/PLAIN the SOC raises a takeover; over mutual TLS an app reads the decision as its certificate's subject", async () => {
  const id = await raiseTakeover(overPlain());
  await seesHold(id, {
    brokers: secure.mtlsBrokers,
    groupIdPrefix: 'app-mtls',
    tls: { ca, ...mtlsIdentity },
  });
  await denied(overPlain(), topics.decisions, 'the PLAIN SOC');
  await denied(overPlain(), topics.identityEvents, 'the PLAIN SOC');
  await denied(overMtls(), topics.decisions, 'the mutual-TLS app');
  await denied(overMtls(), topics.compromiseSignal, 'the mutual-TLS app');
});

test('the mutual-TLS listener refuses a client without a certificate, or with one the client CA did not sign', async () => {
  const probe = async (kafka: kafkajs.Kafka) => {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.fetchTopicOffsets(topics.decisions);
    } finally {
      await admin.disconnect();
    }
  };
  await probe(overMtls());
  await assert.rejects(probe(overMtls({})));
  const stranger = selfSigned();
  await assert.rejects(probe(overMtls(stranger)));
});

test('a wrong password is refused at the handshake', async () => {
  const wrong = as('soc', 'not-the-password').producer();
  const wrongPlain = new Kafka({
    clientId: 'acl-plain-wrong',
    brokers: [secure.brokers],
    ssl: { ca },
    sasl: { mechanism: 'plain', username: plainSoc.username, password: 'not-the-password' },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  }).producer();
  await assert.rejects(wrongPlain.connect(), /SASL|authentication/i);
  await assert.rejects(wrong.connect(), (err: Error) => {
    assert.match(err.message, /SASL|authentication/i);
    return true;
  });
});
