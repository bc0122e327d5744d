import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  describeStackProblem,
  exitOnStackProblem,
  logMarks,
  logTails,
  PrerequisiteError,
  ServiceStartError,
} from './problems.ts';

test('a stack problem prints as its message after the tag; anything else is not ours to word', () => {
  const missing = new PrerequisiteError(
    'Java 17 or newer is required.\n  Debian/Ubuntu: apt-get install …\n',
  );
  assert.equal(
    describeStackProblem(missing, '[start]'),
    '[start] Java 17 or newer is required.\n  Debian/Ubuntu: apt-get install …\n',
  );
  const two = new PrerequisiteError('Java is missing.\n  install it\nredis-server is missing.\n  install it');
  assert.equal(
    describeStackProblem(two, '[stack]'),
    '[stack] Java is missing.\n  install it\n[stack] redis-server is missing.\n  install it\n',
  );
  assert.equal(describeStackProblem(new Error('a bug'), '[start]'), undefined);
  assert.equal(describeStackProblem('a string', '[start]'), undefined);
});

test('exitOnStackProblem rethrows what is not a stack problem, so bugs keep their stack trace', () => {
  const bug = new TypeError('x is undefined');
  assert.throws(
    () => exitOnStackProblem('[test]')(bug),
    (e) => e === bug,
  );
});

test('ServiceStartError carries the service and its logs', () => {
  const e = new ServiceStartError('kafka', ['/x/server.log'], 'kafka exited while starting.');
  assert.equal(e.service, 'kafka');
  assert.deepEqual(e.logFiles, ['/x/server.log']);
  assert.equal(describeStackProblem(e, '[stack]'), '[stack] kafka exited while starting.\n');
});

test('logTails: the last lines of each log that has any, long lines cut', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'stack-logs-'));
  try {
    const server = path.join(dir, 'server.log');
    const stdout = path.join(dir, 'stdout.log');
    const absent = path.join(dir, 'absent.log');
    writeFileSync(server, `${Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n')}\n`);
    writeFileSync(stdout, `Error: Could not create the Java Virtual Machine.\n${'x'.repeat(400)}\n`);
    const text = logTails([server, stdout, absent], { lines: 3, width: 50 });
    assert.equal(
      text,
      [
        `  last lines of ${server}:`,
        '    line 38',
        '    line 39',
        '    line 40',
        `  last lines of ${stdout}:`,
        '    Error: Could not create the Java Virtual Machine.',
        `    ${'x'.repeat(50)}…`,
      ].join('\n'),
    );
    // What an earlier start left is not this start's story.
    const marks = logMarks([server, stdout, absent]);
    assert.equal(
      logTails([server, stdout, absent], { marks }),
      `  nothing new in ${server} or ${stdout} or ${absent}`,
    );
    appendFileSync(server, 'started\nfailed\n');
    assert.equal(
      logTails([server, stdout], { marks }),
      `  last lines of ${server}:\n    started\n    failed`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
