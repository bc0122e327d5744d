/**
 * `npm start`: the main job. Everything `npm run serve` runs (the local stack, the engine and the
 * HTTP API), plus a short takeover story played against it, each decision printed as it changes.
 * At the end it prints the identity it used and commands to look at it; it keeps running and
 * printing decisions until Ctrl-C.
 *
 *   npm start [-- --identity <id>]
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, KafkaSecurityEnv } from '@assurance/core';
import {
  createConsumer,
  createKafka,
  createProducer,
  kafkaSecurity,
  parseBrokers,
  RegistryCodec,
} from '@assurance/kafka';
import { expandDecision, loadPolicyFile } from '@assurance/policy';
import { keySpace, openRedis } from '@assurance/redis';
import type { Decision, DecisionV2 } from '@assurance/schemas';
import { topicNames } from '@assurance/schemas';
import { resolveLayout } from '@assurance/stack';
import { startLocalPipeline } from './local-pipeline.ts';
import { renderDecision } from './render.ts';

const USAGE = `usage: npm start [-- --identity <id>]

Starts the local stack, the engine and the HTTP API, and plays a takeover story for one identity
(a new one each run unless --identity names it; a name already used on this stack is refused).`;

const say = (m: string) => process.stdout.write(`${m}\n`);
const note = (m: string) => process.stderr.write(`[start] ${m}\n`);

let args: { identity?: string | undefined; help?: boolean | undefined };
try {
  args = parseArgs({
    options: { identity: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  }).values;
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  say(USAGE);
  process.exit(0);
}
if (args.identity !== undefined && !/^[A-Za-z0-9._@:-]{1,64}$/.test(args.identity)) {
  process.stderr.write(`--identity takes 1 to 64 letters, digits or . _ @ : -\n`);
  process.exit(2);
}

const run = randomBytes(3).toString('hex');
const identity = args.identity ?? `alice-${run}`;
const { env, apiUrl, token, supervisor } = await startLocalPipeline('start', note, { LOG_LEVEL: 'warn' });

const logger = createLogger('demo', 'warn');
// The engine's policy: decisions in format 2 are written relative to it.
const policy = loadPolicyFile(env.POLICY_FILE);
const topics = topicNames(env.TOPIC_NAMESPACE ?? '');
const kafka = createKafka({
  brokers: parseBrokers(env.KAFKA_BROKERS ?? ''),
  clientId: 'demo',
  logger,
  ...kafkaSecurity(KafkaSecurityEnv.parse(env)),
});
const codec = new RegistryCodec({ url: env.SCHEMA_REGISTRY_URL ?? '' });
const seen: Decision[] = [];
let onDecision: ((d: Decision) => void) | undefined;
const watcher = createConsumer(
  kafka,
  { groupId: `demo-watch-${run}`, topics: [topics.decisions], fromBeginning: false },
  logger,
);
let producer: Awaited<ReturnType<typeof createProducer>> | undefined;

let stopping = false;
const stop = async (code = 0) => {
  if (stopping) return;
  stopping = true;
  const t0 = Date.now();
  note('stopping…');
  await Promise.allSettled([watcher.stop(), producer?.close(), supervisor.stop()]);
  note(
    `stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s (the stack keeps running: npm run stack:down stops it)`,
  );
  process.exit(code);
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop());

try {
  await play();
} catch (err) {
  note(err instanceof Error ? err.message : String(err));
  await stop(1);
}
if (process.env.DEMO_EXIT === '1') await stop();

async function play(): Promise<void> {
  if (args.identity !== undefined) await refuseUsedIdentity(identity);
  producer = await createProducer(kafka);
  await watcher.start(async (messages) => {
    for (const m of messages) {
      if (!m.value) continue;
      const d = expandDecision(policy, JSON.parse(m.value.toString()) as Decision | DecisionV2);
      seen.push(d);
      say(`\n${renderDecision(d, seen.filter((x) => x.identityId === d.identityId).length)}`);
      onDecision?.(d);
    }
    return { processed: messages.length };
  });

  // Fresh channels per run: a phone or inbox tampered in an earlier run keeps its live signals, and
  // a new identity binding it would (rightly) inherit them.
  const digits = String(Date.now()).slice(-5);
  const phone = `+4477009${digits}`;
  const phoneShown = `+44 7700 9${digits.slice(0, 2)} ${digits.slice(2)}`;
  const mailbox = `${identity.toLowerCase().replace(/[^a-z0-9._-]/g, '')}.${run}@example.org`;
  let n = 0;
  const envelope = () => ({
    eventId: `demo-${run}-${++n}`,
    occurredAt: new Date().toISOString(),
    source: 'demo',
  });
  const send = async (topic: string, key: string, value: unknown) =>
    producer?.send([{ topic, key, value: await codec.encode(`${topic}-value`, value) }]);
  const step = (title: string) => say(`\n${'─'.repeat(100)}\n▶ ${title}`);

  say(`The story's identity: ${identity}`);
  step(
    `${identity} enrolls: SMS codes on her phone, email codes on her inbox, TOTP and push on her laptop, a synced passkey whose keychain account is recoverable through her inbox`,
  );
  const bind = (
    channel: { type: string; value: string },
    authenticators: string[],
    recovery: string[],
    extra: object = {},
  ) =>
    send(topics.channelBinding, identity, {
      ...envelope(),
      identityId: identity,
      op: 'bound',
      channel,
      uses: { authenticators, recovery },
      ...extra,
    });
  await bind({ type: 'phone', value: phoneShown }, ['sms_otp', 'voice_otp'], ['sms_code']);
  await bind({ type: 'email', value: mailbox.toUpperCase() }, ['email_otp', 'email_link'], ['email_link']);
  await bind({ type: 'device', value: `laptop-${run}` }, ['totp', 'push', 'password'], ['backup_codes']);
  await bind({ type: 'sync_account', value: `keychain:${identity}` }, ['passkey_synced'], [], {
    recoverableVia: [{ type: 'email', value: mailbox }],
  });
  await nextDecision(
    (d) =>
      d.bindingsKnown &&
      d.signals.length === 0 &&
      d.tiers.critical.enrolledAcceptable?.includes('passkey_synced') === true,
  );

  step(`the carrier reports a SIM swap on ${phoneShown} (an attacker ported her number)`);
  await send(topics.simSwap, phone, {
    ...envelope(),
    phoneNumber: phone,
    swappedAt: new Date(Date.now() - 20 * 60_000).toISOString(),
    changeType: 'port_out',
    carrier: 'Example Mobile',
  });
  await nextDecision((d) => d.signals.some((s) => s.code === 'sim_swap'));

  step(`her mail provider reports a new forwarding rule to an external address on ${mailbox}`);
  await send(topics.mailboxChange, mailbox, {
    ...envelope(),
    mailbox,
    change: 'forwarding_rule_added',
    external: true,
  });
  await nextDecision((d) => d.signals.some((s) => s.code === 'mailbox_tampered'));

  // The commands below need the API: say the story is over only once it answers.
  await apiAnswers(apiUrl);
  const idFile = process.env.DEMO_IDENTITY_FILE ?? path.join(resolveLayout().dir, 'demo-identity');
  writeFileSync(idFile, `${identity}\n`);
  const tokenRef = token ? '$(cat .stack/api-dev-token)' : '<a token from API_TOKENS>';
  say(`\n${'─'.repeat(100)}
The story is over. The engine and the HTTP API (${apiUrl}) keep running and every new decision is
printed here until Ctrl-C. The identity is ${identity} (also in ${path.relative(process.cwd(), idFile)}); try:

  TOKEN=${tokenRef}
  curl -s -H "Authorization: Bearer $TOKEN" '${apiUrl}/v1/identities/${identity}/assurance?action=payout.change'
  npm run assurance -- explain ${identity}

The SOC console shows the same at ${apiUrl}/console: sign in with the token and look up ${identity}
to see her cards, signals and the timeline of her decisions (it updates as they are made); the
overview shows the engine's state, decisions by risk and outcome, and dead letters.

The README's examples use it too (ID=$(cat .stack/demo-identity)).`);
}

/** Waits until the API answers /healthz (it starts beside the engine and may take a moment longer). */
async function apiAnswers(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the HTTP API did not answer on ${url} within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function nextDecision(pred: (d: Decision) => boolean): Promise<Decision> {
  const hit = seen.find((d) => d.identityId === identity && pred(d));
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error('no decision within 30 s: is the engine healthy? (npm run stack:status)')),
      30_000,
    );
    onDecision = (d) => {
      if (d.identityId === identity && pred(d)) {
        clearTimeout(t);
        resolve(d);
      }
    };
  });
}

/** A named identity must be new: the story's first step expects an identity with no history. */
async function refuseUsedIdentity(id: string): Promise<void> {
  const redis = openRedis(env, { kind: 'tool' });
  try {
    await redis.connect();
    const used = await redis.exists(keySpace(env.REDIS_PREFIX ?? 'ra:').identity(id));
    if (used)
      throw new Error(
        `${id} already has state on this stack (an earlier run?). Name another identity, or leave out --identity for a fresh one.`,
      );
  } finally {
    redis.disconnect();
  }
}
