/**
 * How `npm run serve` (and `npm start`, which shares its supervisor and lock) starts and stops for
 * real: one pipeline per consumer group, children that stop when their supervisor dies, and a
 * restart after `kill -9` of everything that decides again without waiting out a long session.
 * Timings are printed for the record, never asserted tightly (this box is shared).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { createLogger } from '@assurance/core';
import type { EngineConfig } from '@assurance/engine';
import { freePort } from '../api/support.ts';
import {
  DecisionWatcher,
  EventProducer,
  envelope,
  isolatedConfig,
  TEST_SIGNING_KEY,
} from '../src/pipeline.ts';
import { ScriptProcess } from '../src/script-process.ts';

let config: EngineConfig;
let env: NodeJS.ProcessEnv;
let watcher: DecisionWatcher;
let producer: EventProducer;
const running: ScriptProcess[] = [];
const logger = createLogger('lifecycle', 'warn');

function serve(): ScriptProcess {
  const p = new ScriptProcess('scripts/serve.ts', env);
  running.push(p);
  return p;
}

/** Pids of a process's direct children (the supervised engine and API). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return [];
  }
}

/** Both stages joined their groups: the engine logs it once per stage, at info. */
const BOTH_JOINED =
  /^(?=[\s\S]*"stage":"router"[^\n]*"msg":"joined group")(?=[\s\S]*"stage":"decider"[^\n]*"msg":"joined group")/;

async function bindAndWait(identityId: string): Promise<number> {
  const t0 = Date.now();
  await producer.send(producer.topics.channelBinding, identityId, {
    ...envelope(),
    identityId,
    op: 'bound',
    channel: { type: 'device', value: `dev-${identityId}` },
    uses: { authenticators: ['security_key'], recovery: [] },
  });
  await watcher.waitFor(identityId, () => true, 60_000);
  return Date.now() - t0;
}

before(async () => {
  config = await isolatedConfig();
  env = {
    ...process.env,
    KAFKA_BROKERS: config.KAFKA_BROKERS,
    SCHEMA_REGISTRY_URL: config.SCHEMA_REGISTRY_URL,
    REDIS_URL: config.REDIS_URL,
    TOPIC_NAMESPACE: config.TOPIC_NAMESPACE,
    ENGINE_GROUP_ID: config.ENGINE_GROUP_ID,
    REDIS_PREFIX: config.REDIS_PREFIX,
    CHANNEL_HASH_SECRET: 'lifecycle-test-secret-0123456789',
    DECISION_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY),
    METRICS_PORT: '0',
    API_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
  };
});
after(async () => {
  for (const p of running) p.kill();
  // Supervised children outlive a SIGKILLed script only until they read EOF on stdin.
  await Promise.all([...running.map((p) => p.closed), watcher?.stop(), producer?.close()]);
});

test('a second serve for the same consumer groups says what runs and exits; the first keeps deciding', async () => {
  const first = serve();
  await first.waitFor(/running until Ctrl-C/);
  await first.waitFor(BOTH_JOINED);
  [watcher, producer] = await Promise.all([
    DecisionWatcher.start(config, logger),
    EventProducer.start(config, logger),
  ]);
  process.stderr.write(`[lifecycle] first decision after start: ${await bindAndWait('life-a')} ms\n`);

  const second = serve();
  const { code } = await second.exited;
  assert.equal(code, 1, second.output);
  assert.match(
    second.output,
    new RegExp(`npm run serve already runs this pipeline \\(pid ${first.child.pid}`),
  );
  assert.doesNotMatch(second.output, /joined group/, 'the second one never joined the groups');
  await bindAndWait('life-b');

  const t0 = Date.now();
  first.interrupt();
  const exit = await first.exited;
  assert.equal(exit.code, 0, first.output.slice(-2000));
  assert.match(first.output, /\[serve\] stopped in/);
  assert.equal(first.output.match(/"msg":"shutting down"/g)?.length, 2, 'engine and API each stop once');
  process.stderr.write(`[lifecycle] Ctrl-C to exit: ${exit.atMs - t0} ms\n`);
});

test('kill -9 of the supervisor: its engine and API notice, stop cleanly and leave their groups', async () => {
  const p = serve();
  await p.waitFor(/running until Ctrl-C/);
  await p.waitFor(BOTH_JOINED);
  const kids = childrenOf(p.child.pid as number);
  assert.equal(kids.length, 2, 'an engine and an API');
  p.kill();
  await p.exited;
  // Their stdin closed with the supervisor: both log their stop on the pipe they inherited.
  await p.waitFor(/"service":"assurance-engine"[^\n]*"msg":"stopped"/, 30_000);
  await p.waitFor(/"service":"assurance-api"[^\n]*"msg":"stopped"/, 30_000);
  const next = serve();
  await next.waitFor(/running until Ctrl-C/);
  const ms = await bindAndWait('life-c');
  process.stderr.write(`[lifecycle] first decision after kill -9 of the supervisor: ${ms} ms\n`);
  next.interrupt();
  assert.equal((await next.exited).code, 0);
});

test('kill -9 of everything: the next serve decides again once the dead members time out', async () => {
  const p = serve();
  await p.waitFor(/running until Ctrl-C/);
  await p.waitFor(BOTH_JOINED);
  const kids = childrenOf(p.child.pid as number);
  p.kill();
  for (const pid of kids) process.kill(pid, 'SIGKILL');
  await p.closed;
  const next = serve();
  await next.waitFor(/running until Ctrl-C/);
  const ms = await bindAndWait('life-d');
  process.stderr.write(`[lifecycle] first decision after kill -9 of everything: ${ms} ms\n`);
  next.interrupt();
  assert.equal((await next.exited).code, 0);
});

test('the engine dies by itself: the API keeps answering, and the supervisor brings the engine back', async () => {
  const p = serve();
  await p.waitFor(/running until Ctrl-C/);
  await p.waitFor(BOTH_JOINED);
  await p.waitFor(/"msg":"assurance API listening"/);
  const apiUrl = `http://127.0.0.1:${env.API_PORT}`;
  const kids = childrenOf(p.child.pid as number);
  const enginePid = kids.find((pid) =>
    execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).includes('services/engine'),
  );
  assert.ok(enginePid, 'the engine child');
  process.kill(enginePid, 'SIGKILL');
  await p.waitFor(/engine exited \(SIGKILL\); restarting in 1 s/);
  // The API never went away with it.
  assert.equal((await fetch(`${apiUrl}/healthz`)).status, 200);
  const ms = await bindAndWait('life-e');
  process.stderr.write(
    `[lifecycle] first decision after the engine was killed under the supervisor: ${ms} ms\n`,
  );
  p.interrupt();
  assert.equal((await p.exited).code, 0);
});
