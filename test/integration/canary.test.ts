import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { EngineConfig } from '@assurance/engine';
import { createAdmin, createKafka, parseBrokers, provision, RegistryCodec } from '@assurance/kafka';
import { topicNames } from '@assurance/schemas';
import { ApiProcess } from '../src/api-process.ts';
import { EngineProcess } from '../src/engine-process.ts';
import { uniqueName } from '../src/harness.ts';
import { DecisionWatcher, EventProducer, envelope, isolatedConfig, TopicCollector } from '../src/pipeline.ts';
import { freePort } from '../src/wait.ts';

/*
 * A canary: a phone number, a mailbox and a device id, each a sentinel, go through every path,
 * valid and malformed: channel bindings, a SIM swap, a mailbox change, a device enrolment, a
 * login, a SOC signal over HTTP, a verify naming the phone, and input that fails to decode or
 * validate. Then every log line of the engine and the API (at debug), every dead-letter header,
 * both processes' metrics, every audit record and decision, and every API answer are searched:
 * the sentinels appear nowhere, not even in part (they may, as their keyed hashes).
 */

const PHONE = '+49 151 9000 4711';
const EMAIL = 'Canary.Q7x@Example.org';
const DEVICE = 'canary-device-8r2k';
/** Any of these in any output is a leak (seven digits of the phone, the mailbox's local part, the device id). */
const FRAGMENTS = ['9000471', '0004711', '4915190', 'canary.q7x', 'Canary.Q7x', DEVICE];

const logger = createLogger('test-canary', process.env.TEST_LOG_LEVEL ?? 'warn');
let config: EngineConfig;
let engine: EngineProcess;
let api: ApiProcess;
let apiBase = '';
let producer: EventProducer;
let watcher: DecisionWatcher;
let dlq: TopicCollector;
let audit: TopicCollector;
let decisions: TopicCollector;
const TOKEN = `canary-${'t'.repeat(24)}`;
const answers: string[] = [];

async function call(method: string, path: string, json?: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${apiBase}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const text = await res.text();
  answers.push(text);
  return { status: res.status, text };
}

before(async () => {
  config = await isolatedConfig({ LOG_LEVEL: 'debug', METRICS_PORT: String(await freePort()) });
  // Topics before anyone writes: the engine process provisions them too, but in its own time.
  const admin = await createAdmin(
    createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'canary', logger }),
  );
  try {
    await provision({
      admin,
      codec: new RegistryCodec({ url: config.SCHEMA_REGISTRY_URL }),
      topics: topicNames(config.TOPIC_NAMESPACE),
      internalPartitions: config.INTERNAL_PARTITIONS,
    });
  } finally {
    await admin.close();
  }
  engine = new EngineProcess(config, { keep: Number.POSITIVE_INFINITY });
  api = await ApiProcess.start(config, {
    port: await freePort(),
    tokens: `canary:${TOKEN}:decisions:read+signals:read+signals:write+signals:clear+ops:read`,
    env: { LOG_LEVEL: 'debug', LOG_FORMAT: 'json' },
    keep: Number.POSITIVE_INFINITY,
  });
  apiBase = api.base;
  [producer, watcher, dlq, audit, decisions] = await Promise.all([
    EventProducer.start(config, logger),
    DecisionWatcher.start(config, logger),
    TopicCollector.start(config, logger, `${config.TOPIC_NAMESPACE}.assurance.dlq.v1`),
    TopicCollector.start(config, logger, `${config.TOPIC_NAMESPACE}.assurance.audit.v1`),
    TopicCollector.start(config, logger, `${config.TOPIC_NAMESPACE}.assurance.decisions.v1`),
  ]);
});

after(async () => {
  await api?.stop();
  await Promise.allSettled([
    producer?.close(),
    watcher?.stop(),
    dlq?.stop(),
    audit?.stop(),
    decisions?.stop(),
  ]);
  await engine?.stop();
});

test('the sentinels go through every path and appear nowhere but as hashes', async () => {
  const id = uniqueName('canary');
  const t = (name: string) => `${config.TOPIC_NAMESPACE}.${name}`;
  // Valid events.
  for (const [channel, uses] of [
    [
      { type: 'phone', value: PHONE },
      { authenticators: ['sms_otp'], recovery: ['sms_code'] },
    ],
    [
      { type: 'email', value: EMAIL },
      { authenticators: ['email_otp'], recovery: ['email_link'] },
    ],
    [
      { type: 'device', value: DEVICE },
      { authenticators: ['push'], recovery: [] },
    ],
  ] as const) {
    await producer.send(t('identity.channel-binding.v1'), id, {
      ...envelope(-60_000),
      identityId: id,
      op: 'bound',
      channel,
      uses,
    });
  }
  await producer.send(t('identity.sim-swap.v1'), '+4915190004711', {
    ...envelope(),
    phoneNumber: PHONE,
    swappedAt: new Date(Date.now() - 60_000).toISOString(),
    changeType: 'port_out',
  });
  await producer.send(t('identity.mailbox-change.v1'), 'canary.q7x@example.org', {
    ...envelope(),
    mailbox: EMAIL,
    change: 'forwarding_rule_added',
    external: true,
  });
  await producer.send(t('identity.device.v1'), id, {
    ...envelope(),
    identityId: id,
    deviceId: DEVICE,
    change: 'enrolled',
    authenticators: ['push'],
  });
  await producer.send(t('identity.login.v1'), id, {
    ...envelope(),
    identityId: id,
    outcome: 'failure',
    authenticator: 'sms_otp',
    deviceId: DEVICE,
  });
  // Malformed input carrying the sentinels: a JSON error right at the phone, a phone with letters,
  // a mailbox that is not one.
  await producer.sendRaw(t('identity.sim-swap.v1'), 'canary-bad-1', `{"phoneNumber": +4915190004711}`);
  await producer.sendRaw(
    t('identity.sim-swap.v1'),
    'canary-bad-2',
    JSON.stringify({ ...envelope(), phoneNumber: `${PHONE} ext. A`, swappedAt: new Date().toISOString() }),
  );
  await producer.sendRaw(
    t('identity.mailbox-change.v1'),
    'canary-bad-3',
    JSON.stringify({ ...envelope(), mailbox: `${EMAIL}@`, change: 'recovery_changed' }),
  );
  // Over HTTP: a SOC signal on the phone (and one the contract refuses), a verify naming it.
  const raised = await call('POST', '/v1/signals', {
    signalId: `canary-${id}`,
    op: 'raise',
    subject: { type: 'phone', value: PHONE },
    kind: 'sim_swap',
    severity: 'high',
  });
  assert.equal(raised.status, 202, raised.text);
  const refused = await call('POST', '/v1/signals', {
    signalId: `canary-bad-${id}`,
    op: 'raise',
    subject: { type: 'phone', value: '0151 9000 4711' },
    kind: 'sim_swap',
    severity: 'high',
  });
  assert.equal(refused.status, 400);

  await dlq.waitFor((m) => m.key?.toString() === 'canary-bad-3');
  await Promise.all(['canary-bad-1', 'canary-bad-2'].map((k) => dlq.waitFor((m) => m.key?.toString() === k)));
  const decided = await watcher.waitFor(id, (d) =>
    ['sim_swap', 'mailbox_tampered', 'device_new', 'channel_compromised'].every((c) =>
      d.signals.some((s) => s.code === c),
    ),
  );
  await audit.waitFor(
    (m) =>
      m.key?.toString() === id && m.value?.toString().includes(`"sequence":${decided.sequence}`) === true,
  );
  const verified = await call('POST', '/v1/assurance/verify', {
    identityId: id,
    action: 'payout.change',
    completed: {
      authenticator: 'sms_otp',
      channel: { type: 'phone', value: PHONE },
      authenticatedAt: new Date().toISOString(),
    },
  });
  assert.equal(verified.status, 200, verified.text);
  assert.equal(JSON.parse(verified.text).satisfied, false);
  await call('GET', `/v1/identities/${id}/signals`);
  await call('GET', `/v1/identities/${id}/assurance`);
  await call('GET', '/readyz');

  const engineMetrics = await (await fetch(`http://127.0.0.1:${config.METRICS_PORT}/metrics`)).text();
  const apiMetrics = (await call('GET', '/metrics')).text;
  const places: Array<[string, string]> = [
    ['engine log', engine.output.join('')],
    ['API log', api.output.join('')],
    ['dead-letter headers', dlq.messages.map((m) => JSON.stringify(m.headers)).join('\n')],
    ['audit records', audit.messages.map((m) => m.value?.toString() ?? '').join('\n')],
    ['decisions', decisions.messages.map((m) => m.value?.toString() ?? '').join('\n')],
    ['engine metrics', engineMetrics],
    ['API metrics', apiMetrics],
    ['API answers', answers.join('\n')],
  ];
  // The search must see what it searches: the logs did log at debug, the dead letters are there.
  assert.ok(
    /"level":(20|30)/.test(engine.output.join('')),
    `the engine's log was captured: ${engine.output.join('').slice(0, 300)}`,
  );
  assert.ok(
    /"level":(20|30)/.test(api.output.join('')),
    `the API's log was captured: ${api.output.join('').slice(0, 300)}`,
  );
  assert.ok(dlq.messages.length >= 3);
  for (const [where, text] of places) {
    for (const f of FRAGMENTS) {
      const at = text.indexOf(f);
      assert.equal(at, -1, `${where} shows "${f}": …${text.slice(Math.max(0, at - 120), at + 120)}…`);
    }
  }
});
