import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '@assurance/stack';
import { PrivateRedis, startTestApi, type TestApi, TOKENS } from '../api/support.ts';
import { startPipeline } from '../src/pipeline.ts';
import { pythonVenv } from '../src/python-peer.ts';

/*
 * The HTTP API fuzzed from its own OpenAPI document with schemathesis (from PyPI): every operation
 * with generated valid and invalid inputs, checked for server errors, responses that break the
 * document, and status codes it does not list. A second run against an API whose Redis is stopped
 * adds a check of our own (test/fuzz/never_lenient.py): no answer is `degraded: false` and no
 * verification `satisfied: true` then.
 */

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: TestApi;
let blind: TestApi;
let redis: PrivateRedis;
let bin: string;
let workDir: string;

before(async () => {
  bin = pythonVenv(path.join(REPO_ROOT, '.stack/fuzz'), path.join(REPO_ROOT, 'test/fuzz/requirements.txt'));
  workDir = mkdtempSync(path.join(tmpdir(), 'fuzz-'));
  p = await startPipeline();
  api = await startTestApi(p.config);
  redis = await PrivateRedis.create();
  blind = await startTestApi({ ...p.config, REDIS_URL: redis.url });
  await redis.stop();
});

after(async () => {
  await Promise.allSettled([api?.stop(), blind?.stop()]);
  await redis?.destroy();
  await p?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** Runs `st run` against `target`; resolves with its exit code and output. */
function schemathesis(
  target: TestApi,
  env: Record<string, string>,
  exclude: readonly string[] = [],
): Promise<{ code: number | null; out: string }> {
  const args = [
    'run',
    `${target.baseUrl}/openapi.json`,
    '--url',
    target.baseUrl,
    '-H',
    `Authorization: Bearer ${TOKENS.both}`,
    '--checks',
    'all',
    // A schema-valid action name the policy does not know is refused (400 unknown-action) on
    // purpose: a misspelt action must never get a plausible answer.
    '--exclude-checks',
    ['positive_data_acceptance', ...exclude].join(','),
    '--max-examples',
    '25',
    '--seed',
    '1',
    '--request-timeout',
    '10',
    '--no-color',
  ];
  return new Promise((resolve) => {
    const child = spawn(path.join(bin, 'st'), args, {
      // Its caches (.schemathesis, .hypothesis) go to a folder of its own, not into the repository.
      cwd: workDir,
      env: {
        ...process.env,
        ...env,
        PYTHONPATH: path.join(REPO_ROOT, 'test/fuzz'),
        SCHEMATHESIS_HOOKS: 'never_lenient',
      },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

test('fuzzed from its OpenAPI document: no 5xx, every response as documented', async () => {
  const { code, out } = await schemathesis(api, { NEVER_LENIENT: '0' });
  assert.equal(code, 0, out.slice(-6000));
  assert.match(out, /\d+ generated, \d+ passed/, 'schemathesis ran test cases');
});

test('with Redis stopped, no generated request gets degraded: false or satisfied: true', async () => {
  // 503 is what a read that needs Redis answers then (documented, and checked for conformance).
  const { code, out } = await schemathesis(blind, { NEVER_LENIENT: '1' }, ['not_a_server_error']);
  assert.equal(code, 0, out.slice(-6000));
});
