/**
 * `npm start`: the main job. Brings the local stack up (or uses KAFKA_BROKERS, SCHEMA_REGISTRY_URL,
 * REDIS_URL), provisions, starts the pipeline and plays a short takeover story, printing each
 * decision as it changes. It keeps running and printing decisions until Ctrl-C.
 */
import { createLogger } from '@assurance/core';
import { EngineConfigSchema, startEngine } from '@assurance/engine';
import { createConsumer, createKafka, createProducer, parseBrokers, RegistryCodec } from '@assurance/kafka';
import type { Decision } from '@assurance/schemas';
import { exitOnStackProblem } from '@assurance/stack';
import { localEnvironment } from './local-env.ts';
import { renderDecision } from './render.ts';

const say = (m: string) => process.stdout.write(`${m}\n`);
const note = (m: string) => process.stderr.write(`[start] ${m}\n`);

const env = await localEnvironment(note).catch(exitOnStackProblem('[start]'));
const config = EngineConfigSchema.parse({
  ...process.env,
  ...env,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
});
const logger = createLogger('assurance-engine', config.LOG_LEVEL);
const engine = await startEngine(config, logger);
note(`pipeline running (policy ${engine.policy.version}, ${engine.policy.digest.slice(0, 19)}…)`);

const kafka = createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'demo', logger });
const producer = await createProducer(kafka);
const codec = new RegistryCodec({ url: config.SCHEMA_REGISTRY_URL });
const run = Date.now().toString(36);
const alice = `alice-${run}`;
// Fresh channels per run: a phone or inbox tampered in an earlier run keeps its live signals, and a
// new identity binding it would (rightly) inherit them.
const digits = String(Date.now()).slice(-5);
const phone = `+4477009${digits}`;
const phoneShown = `+44 7700 9${digits.slice(0, 2)} ${digits.slice(2)}`;
const mailbox = `alice.${run}@example.org`;

// Show every decision published from now on, for any identity, as it happens.
const seen: Decision[] = [];
let onDecision: ((d: Decision) => void) | undefined;
const watcher = createConsumer(
  kafka,
  { groupId: `demo-watch-${run}`, topics: [engine.topics.decisions], fromBeginning: false },
  logger,
);
await watcher.start(async (messages) => {
  for (const m of messages) {
    if (!m.value) continue;
    const d = JSON.parse(m.value.toString()) as Decision;
    say(`\n${renderDecision(d, d.identityId === alice ? 'alice' : d.identityId)}`);
    seen.push(d);
    onDecision?.(d);
  }
  return { processed: messages.length };
});

let n = 0;
const envelope = () => ({
  eventId: `demo-${run}-${++n}`,
  occurredAt: new Date().toISOString(),
  source: 'demo',
});
const send = async (topic: string, key: string, value: unknown) =>
  producer.send([{ topic, key, value: await codec.encode(`${topic}-value`, value) }]);
function nextDecision(pred: (d: Decision) => boolean): Promise<Decision> {
  const hit = seen.find((d) => d.identityId === alice && pred(d));
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error('no decision within 30 s: is the pipeline healthy?')),
      30_000,
    );
    onDecision = (d) => {
      if (d.identityId === alice && pred(d)) {
        clearTimeout(t);
        resolve(d);
      }
    };
  });
}
const step = (title: string) => say(`\n${'─'.repeat(100)}\n▶ ${title}`);

step(
  'alice enrolls: SMS codes on her phone, email codes on her inbox, TOTP and push on her laptop, a synced passkey whose keychain account is recoverable through her inbox',
);
const bind = (
  channel: { type: string; value: string },
  authenticators: string[],
  recovery: string[],
  extra: object = {},
) =>
  send(engine.topics.channelBinding, alice, {
    ...envelope(),
    identityId: alice,
    op: 'bound',
    channel,
    uses: { authenticators, recovery },
    ...extra,
  });
await bind({ type: 'phone', value: phoneShown }, ['sms_otp', 'voice_otp'], ['sms_code']);
await bind(
  { type: 'email', value: mailbox.replace('alice', 'Alice') },
  ['email_otp', 'email_link'],
  ['email_link'],
);
await bind({ type: 'device', value: `laptop-${run}` }, ['totp', 'push', 'password'], ['backup_codes']);
await bind({ type: 'sync_account', value: `keychain:${alice}` }, ['passkey_synced'], [], {
  recoverableVia: [{ type: 'email', value: mailbox }],
});
await nextDecision(
  (d) =>
    d.bindingsKnown &&
    d.signals.length === 0 &&
    d.tiers.critical.enrolledAcceptable?.includes('passkey_synced') === true,
);

step(`the carrier reports a SIM swap on ${phoneShown} (an attacker ported her number)`);
await send(engine.topics.simSwap, phone, {
  ...envelope(),
  phoneNumber: phone,
  swappedAt: new Date(Date.now() - 20 * 60_000).toISOString(),
  changeType: 'port_out',
  carrier: 'Example Mobile',
});
await nextDecision((d) => d.signals.some((s) => s.code === 'sim_swap'));

step(`her mail provider reports a new forwarding rule to an external address on ${mailbox}`);
await send(engine.topics.mailboxChange, mailbox, {
  ...envelope(),
  mailbox,
  change: 'forwarding_rule_added',
  external: true,
});
await nextDecision((d) => d.signals.some((s) => s.code === 'mailbox_tampered'));

say(
  `\n${'─'.repeat(100)}\nThe story is over; the pipeline keeps running and prints every new decision. Ctrl-C stops it.`,
);
say(
  `Try: npm run stack:status · produce to ${engine.topics.compromiseSignal} · read ${engine.topics.decisions}`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  note('stopping…');
  await watcher.stop();
  await producer.close();
  await engine.stop();
  note('stopped (the stack keeps running: npm run stack:down stops it)');
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
if (process.env.DEMO_EXIT === '1') await stop();
