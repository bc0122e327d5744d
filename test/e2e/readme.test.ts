/**
 * The README's promise, as a newcomer follows it: `npm start` plays the takeover story and prints
 * the identity it used; every shell block the README marks `<!-- runnable -->` then works against
 * the running pipeline; Ctrl-C stops everything and says so.
 *
 * The run is isolated (its own topics, groups, Redis prefix, API port and identity file), so the
 * README's blocks are run with two substitutions only: the API address and the identity file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '@assurance/stack';
import { freePort } from '../api/support.ts';
import { endpoints, uniqueName, uniquePrefix } from '../src/harness.ts';
import { TEST_SIGNING_KEY } from '../src/pipeline.ts';
import { ScriptProcess } from '../src/script-process.ts';

const README_API = 'http://127.0.0.1:8080';
const README_ID_FILE = '.stack/demo-identity';

/** Shell blocks preceded by `<!-- runnable -->`, in order. */
export function runnableBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const re = /<!-- runnable -->\s*\n```(?:sh|bash|shell)\n([\s\S]*?)\n```/g;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) blocks.push(m[1] as string);
  return blocks;
}

const dir = mkdtempSync(path.join(tmpdir(), 'readme-'));
const idFile = path.join(dir, 'demo-identity');
let env: NodeJS.ProcessEnv;
let apiUrl: string;
let demo: ScriptProcess;

before(async () => {
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    ...(await endpoints()),
    TOPIC_NAMESPACE: uniqueName('readme'),
    ENGINE_GROUP_ID: uniqueName('readme'),
    REDIS_PREFIX: uniquePrefix(),
    CHANNEL_HASH_SECRET: 'readme-test-secret-0123456789',
    DECISION_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY),
    METRICS_PORT: '0',
    API_PORT: String(port),
    DEMO_IDENTITY_FILE: idFile,
    LOG_FORMAT: 'json',
  };
  demo = new ScriptProcess('scripts/start.ts', env);
});
after(async () => {
  demo?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('npm start plays the takeover story, naming its identity and printing each decision', async () => {
  const out = await demo.waitFor(/The story is over/, 90_000);
  const identity = readFileSync(idFile, 'utf8').trim();
  assert.match(identity, /^alice-[0-9a-f]{6}$/);
  assert.match(out, new RegExp(`The story's identity: ${identity}`));
  assert.match(out, new RegExp(`${identity} · decision 6 · risk high`));
  // What excludes each method is named truthfully: the phone for SMS, phishing resistance for TOTP.
  assert.match(out, /✗ sms_otp \(sim_swap\.phone_bound\)/);
  assert.match(out, /✗ totp \(phishing_resistance\.required\)/);
  assert.doesNotMatch(out, /✗ totp \(sim_swap\.phone_bound\)/);
  assert.match(out, /critical HOLD/);
  assert.match(out, new RegExp(`npm run assurance -- explain ${identity}`));
  // A quiet start: no warnings from Node, no stack traces.
  assert.doesNotMatch(out, /Warning:|\n\s+at .*\(.*:\d+:\d+\)/);
});

test("every runnable block of the README works against the demo's pipeline", async () => {
  await demo.waitFor(/The story is over/, 90_000);
  const blocks = runnableBlocks(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'));
  assert.ok(blocks.length >= 3, `found ${blocks.length} runnable blocks`);
  const identity = readFileSync(idFile, 'utf8').trim();
  for (const block of blocks) {
    const script = block.replaceAll(README_API, apiUrl).replaceAll(README_ID_FILE, idFile);
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: REPO_ROOT,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(
      r.status,
      0,
      `README block failed (${r.status}):\n${block}\n--- output:\n${r.stdout}${r.stderr}`,
    );
    assert.doesNotMatch(r.stdout, /"degraded":true/, `a degraded answer:\n${block}\n${r.stdout}`);
    if (block.includes('explain')) assert.match(r.stdout, new RegExp(identity));
  }
});

test('Ctrl-C stops the story, the engine and the API, and says so', async () => {
  await demo.waitFor(/The story is over/, 90_000);
  const t0 = Date.now();
  demo.interrupt();
  const { code, atMs } = await demo.exited;
  assert.equal(code, 0, demo.output.slice(-2000));
  assert.match(demo.output, /stopped in \d+\.\d s/);
  process.stderr.write(`[readme] Ctrl-C to exit: ${atMs - t0} ms\n`);
});
