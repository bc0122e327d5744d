import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseCli, USAGE } from './cli.ts';
import { KAFKA_CLUSTER_PORT_SPAN } from './layout.ts';

describe('parseCli', () => {
  test('a command, or help wherever --help or -h appears', () => {
    assert.deepEqual(parseCli(['up']), { command: 'up', cluster: false });
    assert.deepEqual(parseCli(['provision']), { command: 'provision', cluster: false });
    assert.deepEqual(parseCli(['status', '--help']), { help: true });
    assert.deepEqual(parseCli(['--help', 'down']), { help: true });
    assert.deepEqual(parseCli(['up', '-h']), { help: true });
  });

  test('--cluster, before or after up or down, asks for the clusters', () => {
    assert.deepEqual(parseCli(['up', '--cluster']), { command: 'up', cluster: true });
    assert.deepEqual(parseCli(['--cluster', 'down']), { command: 'down', cluster: true });
    assert.deepEqual(parseCli(['up', '--cluster', '--help']), { help: true });
  });

  test('--cluster with another command, or with a value, is an error', () => {
    assert.deepEqual(parseCli(['status', '--cluster']), {
      error: "'--cluster' goes with up or down, not status",
    });
    assert.deepEqual(parseCli(['provision', '--cluster']), {
      error: "'--cluster' goes with up or down, not provision",
    });
    assert.deepEqual(parseCli(['up', '--cluster=3']), {
      error: "Option '--cluster' does not take an argument",
    });
    assert.deepEqual(parseCli(['up', '--cluster', 'now']), { error: "unexpected argument 'now'" });
  });

  test('anything it does not know is an error, never a command run anyway', () => {
    assert.deepEqual(parseCli(['status', '--verbose']), { error: "Unknown option '--verbose'" });
    assert.deepEqual(parseCli(['status', 'now']), { error: "unexpected argument 'now'" });
    assert.deepEqual(parseCli(['start']), { error: "unknown command 'start'" });
    assert.deepEqual(parseCli([]), { error: 'no command given' });
  });
});

/** The CLI as npm runs it, in a stack folder of its own with nothing running. */
function cli(args: string[], env: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'stack-cli-'));
  try {
    const base = { ...process.env };
    for (const k of ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'REDIS_URL']) delete base[k];
    const r = spawnSync(process.execPath, [path.join(import.meta.dirname, 'cli.ts'), ...args], {
      encoding: 'utf8',
      env: { ...base, STACK_DIR: dir, ...env },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the stack CLI', () => {
  test('--help prints the usage and runs nothing', () => {
    const r = cli(['status', '--help']);
    assert.equal(r.code, 0);
    assert.equal(r.out, `${USAGE}\n`);
    assert.equal(r.err, '');
  });

  test('an unknown flag prints the usage and exits 2', () => {
    const r = cli(['up', '--fast']);
    assert.equal(r.code, 2);
    assert.match(r.err, /^\[stack\] Unknown option '--fast'\nusage: /);
  });

  test('a stack problem is one paragraph and exit 1, with no stack trace', () => {
    const r = cli(['up'], { STACK_KAFKA_PORT: 'abc' });
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      '[stack] invalid stack configuration:\n  STACK_KAFKA_PORT: Invalid input: expected number, received NaN\n',
    );
  });

  test('the usage names --cluster and the cluster variables', () => {
    assert.match(USAGE, /up --cluster\n/);
    assert.match(USAGE, /down --cluster\n/);
    assert.match(USAGE, /STACK_KAFKA_CLUSTER_PORT/);
    assert.match(USAGE, /STACK_KAFKA_CLUSTER_HEAP/);
  });

  test('up --cluster checks the configuration before starting anything', () => {
    const r = cli(['up', '--cluster'], { STACK_KAFKA_CLUSTER_PORT: '65530' });
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `[stack] invalid stack configuration:\n  STACK_KAFKA_CLUSTER_PORT: Too big: expected number to be <=${65535 - KAFKA_CLUSTER_PORT_SPAN}\n`,
    );
    assert.equal(r.out, '');
  });

  test('status --cluster prints the usage and exits 2', () => {
    const r = cli(['status', '--cluster']);
    assert.equal(r.code, 2);
    assert.match(r.err, /^\[stack\] '--cluster' goes with up or down, not status\nusage: /);
  });

  test('down --cluster with nothing running stops nothing and says nothing', () => {
    const r = cli(['down', '--cluster']);
    assert.equal(r.code, 0);
    assert.equal(r.err, '');
    assert.equal(r.out, '');
  });

  test('provision with no stack running and no cluster named says how to get one', () => {
    const r = cli(['provision']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^\[stack\] nothing to provision: the local kafka and registry are not running\./);
    assert.match(r.err, /npm run stack:up/);
    assert.doesNotMatch(r.err, /\n\s+at /);
  });
});
