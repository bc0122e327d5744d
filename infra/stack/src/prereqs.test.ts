import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AptRunner } from './prereqs.ts';
import { APT_NOTICE_EVERY_MS, aptGet, parseAptLock } from './prereqs.ts';
import { PrerequisiteError } from './problems.ts';

/** apt 2.6's own words (Debian 12), as the runner would pass them on. */
const WAITING =
  'Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)...';
const LISTS_HELD = [
  'Reading package lists...',
  'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 777 (apt-get)',
  'E: Unable to lock directory /var/lib/apt/lists/',
].join('\n');
const FRONTEND_TIMED_OUT =
  'E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?';

/** A fake clock, apt-get and log: each scripted step says how long apt "ran" and what it printed. */
function harness(steps: Array<{ ms: number; lines?: string[]; status: number; out?: string }>) {
  let clock = 1_000_000;
  const calls: string[][] = [];
  const logged: Array<{ at: number; msg: string }> = [];
  const runner: AptRunner = async (args, onLine) => {
    calls.push([...args]);
    const step = steps.shift();
    if (!step) throw new Error('apt-get called more often than scripted');
    const lines = step.lines ?? [];
    // Lines arrive spread over the run, as apt prints one a second while it waits.
    for (const line of lines) {
      clock += step.ms / Math.max(lines.length, 1);
      onLine(line);
    }
    if (lines.length === 0) clock += step.ms;
    return { status: step.status, out: step.out ?? lines.join('\n') };
  };
  const t0 = clock;
  return {
    calls,
    logged,
    elapsed: () => clock - t0,
    opts: {
      log: (msg: string) => logged.push({ at: clock - t0, msg }),
      lockTimeoutS: 300,
      remedy: 'apt-get install -y redis-server',
      runner,
      now: () => clock,
      sleep: async (ms: number) => {
        clock += ms;
      },
    },
  };
}

describe('aptGet waits for another package manager', () => {
  test('dpkg locks: apt waits itself (DPkg::Lock::Timeout) and we relay its report every 10 s', async () => {
    // apt reports the holder once a second for 25 s, then gets the lock and installs.
    const h = harness([{ ms: 25_000, lines: Array(25).fill(WAITING), status: 0 }]);
    await aptGet([['install', '-y', 'redis-server']], h.opts);
    assert.deepEqual(h.calls, [['-q', '-o', 'DPkg::Lock::Timeout=300', 'install', '-y', 'redis-server']]);
    assert.equal(h.logged.length, 3, JSON.stringify(h.logged));
    for (const [i, l] of h.logged.entries()) {
      assert.equal(
        l.msg,
        'waiting for another package manager to finish (/var/lib/dpkg/lock-frontend held by pid 4242, unattended-upgr), up to 300 s…',
      );
      if (i > 0) assert.ok(l.at - (h.logged[i - 1]?.at ?? 0) >= APT_NOTICE_EVERY_MS);
    }
  });

  test('the lists lock of `update`, which apt does not wait for: retried until free', async () => {
    const held = { ms: 50, status: 100, out: LISTS_HELD };
    const h = harness([held, held, held, { ms: 3000, status: 0, out: 'Reading package lists...' }]);
    await aptGet([['update']], h.opts);
    assert.equal(h.calls.length, 4);
    // The deadline is shared: each retry hands apt only the time that is left.
    assert.deepEqual(
      h.calls.map((c) => c[2]),
      [
        'DPkg::Lock::Timeout=300',
        'DPkg::Lock::Timeout=298',
        'DPkg::Lock::Timeout=296',
        'DPkg::Lock::Timeout=294',
      ],
    );
    assert.deepEqual(
      h.logged.map((l) => l.msg),
      [
        'waiting for another package manager to finish (/var/lib/apt/lists/lock held by pid 777, apt-get), up to 300 s…',
      ],
    );
  });

  test('past the timeout: one line naming the holder and what to run', async () => {
    // apt waits out the whole timeout on the frontend lock and gives up without naming the pid.
    const h = harness([{ ms: 300_000, lines: [WAITING, WAITING, FRONTEND_TIMED_OUT], status: 100 }]);
    await assert.rejects(aptGet([['install', '-y', 'redis-server']], h.opts), (err: unknown) => {
      assert.ok(err instanceof PrerequisiteError);
      assert.equal(
        err.message,
        'another package manager (pid 4242, unattended-upgr) still holds /var/lib/dpkg/lock-frontend after 300 s (STACK_APT_LOCK_TIMEOUT_S); when it has finished, run: apt-get install -y redis-server',
      );
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });
  });

  test('update and install share one deadline', async () => {
    const held = { ms: 50, status: 100, out: LISTS_HELD };
    const h = harness([held, held, { ms: 1000, status: 0 }, { ms: 1000, status: 0 }]);
    await aptGet([['update'], ['install', '-y', 'redis-server']], h.opts);
    // 2 × (50 ms + 2 s) of retries, then 1 s of update: install gets what is left of the 300 s.
    assert.deepEqual(h.calls.at(-1), [
      '-q',
      '-o',
      'DPkg::Lock::Timeout=295',
      'install',
      '-y',
      'redis-server',
    ]);
  });

  test('STACK_APT_LOCK_TIMEOUT_S=0 gives up at once', async () => {
    const h = harness([{ ms: 10, status: 100, out: LISTS_HELD }]);
    const opts = { ...h.opts, lockTimeoutS: 0 };
    await assert.rejects(
      aptGet([['update']], opts),
      /\(pid 777, apt-get\) still holds \/var\/lib\/apt\/lists\/lock after 0 s/,
    );
    assert.deepEqual(h.calls, [['-q', '-o', 'DPkg::Lock::Timeout=0', 'update']]);
  });

  test('any other failure is not waited on: apt-get’s last lines and the remedy', async () => {
    // apt waited for the lock, got it, then failed for another reason: no retry.
    const out = [WAITING, 'Reading package lists...', 'E: Unable to locate package redis-server'].join('\n');
    const h = harness([{ ms: 2000, status: 100, out }]);
    await assert.rejects(aptGet([['install', '-y', 'redis-server']], h.opts), (err: unknown) => {
      assert.ok(err instanceof PrerequisiteError);
      assert.match(err.message, /^apt-get install -y redis-server failed \(exit 100\):/);
      assert.match(err.message, /E: Unable to locate package redis-server/);
      assert.doesNotMatch(err.message, /Waiting for cache lock/, 'the wait that did end is noise here');
      assert.match(err.message, /run: apt-get install -y redis-server$/);
      return true;
    });
    assert.equal(h.calls.length, 1);
  });
});

describe('parseAptLock', () => {
  test('every form apt words a held lock in', () => {
    assert.deepEqual(parseAptLock(WAITING), {
      file: '/var/lib/dpkg/lock-frontend',
      pid: 4242,
      command: 'unattended-upgr',
    });
    assert.deepEqual(parseAptLock('E: Could not get lock /var/lib/dpkg/lock. It is held by process 12'), {
      file: '/var/lib/dpkg/lock',
      pid: 12,
    });
    // apt before 1.9: no pid.
    assert.deepEqual(
      parseAptLock(
        'E: Could not get lock /var/lib/dpkg/lock-frontend - open (11: Resource temporarily unavailable)',
      ),
      { file: '/var/lib/dpkg/lock-frontend' },
    );
    assert.deepEqual(parseAptLock(FRONTEND_TIMED_OUT), { file: '/var/lib/dpkg/lock-frontend' });
    assert.deepEqual(
      parseAptLock(
        'E: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?',
      ),
      { file: '/var/lib/dpkg/' },
    );
    assert.deepEqual(parseAptLock('E: Unable to lock directory /var/lib/apt/lists/'), {
      file: '/var/lib/apt/lists/',
    });
    assert.equal(parseAptLock('E: Unable to locate package redis-server'), undefined);
  });
});
