import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { API_TOKENS, TOKENS } from '../api/support.ts';
import { startPipeline } from '../src/pipeline.ts';

/**
 * The process as `npm run serve` runs it: services/api/src/main.ts listens, serves, and stops
 * cleanly (exit 0) on SIGTERM; a bad configuration stops it at start with one line per variable.
 */

const MAIN = fileURLToPath(new URL('../../services/api/src/main.ts', import.meta.url));
type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;

before(async () => {
  p = await startPipeline();
});
after(() => p?.stop());

function run(env: Record<string, string>) {
  return spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

test('main.ts listens, answers, and exits 0 on SIGTERM', async () => {
  const child = run({
    KAFKA_BROKERS: p.config.KAFKA_BROKERS,
    SCHEMA_REGISTRY_URL: p.config.SCHEMA_REGISTRY_URL,
    ...(p.config.REDIS_URL ? { REDIS_URL: p.config.REDIS_URL } : {}),
    ...(p.config.REDIS_CLUSTER_NODES ? { REDIS_CLUSTER_NODES: p.config.REDIS_CLUSTER_NODES } : {}),
    REDIS_PREFIX: p.config.REDIS_PREFIX,
    TOPIC_NAMESPACE: p.config.TOPIC_NAMESPACE,
    ENGINE_GROUP_ID: p.config.ENGINE_GROUP_ID,
    API_TOKENS,
    API_PORT: '0',
    LOG_LEVEL: 'info',
  });
  const exited = once(child, 'exit');
  let out = '';
  const address = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out.slice(-1000)}`)));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const m = /"address":"(http:\/\/127\.0\.0\.1:\d+)".*"msg":"assurance API listening"/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
  });
  assert.ok(!out.includes(TOKENS.both), 'tokens never reach the log');
  const res = await fetch(`${address}/v1/identities/proc/assurance`, {
    headers: { authorization: `Bearer ${TOKENS.reader}` },
  });
  assert.equal(res.status, 200);
  child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, out.slice(-1000));
  assert.match(out, /"why":"SIGTERM".*"msg":"shutting down"/);
});

test('a bad configuration stops main.ts at start with one line per variable', async () => {
  const child = run({ API_TOKENS: 'x:short:decisions:read', API_PORT: 'eighty' });
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 1);
  for (const v of ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'REDIS_URL', 'API_PORT', 'API_TOKENS']) {
    assert.match(err, new RegExp(`^  ${v}: `, 'm'), v);
  }
  assert.ok(!err.includes('short'), 'the token is not echoed');
});
