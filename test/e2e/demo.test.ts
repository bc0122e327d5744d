/**
 * The README's promise: `npm start` plays its story to the end. Run here on an isolated namespace,
 * groups and key prefix, with DEMO_EXIT=1 so it stops after the story instead of waiting for Ctrl-C.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '@assurance/stack';
import { endpoints, uniqueName, uniquePrefix } from '../src/harness.ts';

test('npm start plays the takeover story and prints each decision', async () => {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts/start.ts')], {
    env: {
      ...process.env,
      ...(await endpoints()),
      DEMO_EXIT: '1',
      TOPIC_NAMESPACE: uniqueName('demo'),
      ENGINE_GROUP_ID: uniqueName('demo'),
      REDIS_PREFIX: uniquePrefix(),
      CHANNEL_HASH_SECRET: 'demo-test-secret-0123456789',
      METRICS_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, out.slice(-2000));
  assert.match(out, /alice · decision #6 · risk high/);
  assert.match(out, /✗ sms_otp \(sim_swap\.phone_bound\)/);
  assert.match(out, /critical HOLD/);
  // kafkajs's negative timer is muted where clients are made (packages/kafka/src/warnings.ts).
  assert.doesNotMatch(out, /\(node:\d+\) \w*Warning/);
});
