/**
 * `npm test`: every test. Unit tests need nothing; integration and end-to-end tests get the real
 * stack (started here if needed, see test/src/harness.ts) through KAFKA_BROKERS,
 * SCHEMA_REGISTRY_URL and REDIS_URL. `npm run test:unit` runs only the unit tests;
 * `npm test -- <file>...` runs the named files only (no floor is enforced then).
 *
 * A verdict that silently disappears is worse than a failure, so this runner counts instead of
 * trusting an exit code:
 * - every test file must end with its own summary: a file that exits early (process.exit in a
 *   test, a crash between tests) or never exits (a leaked handle) fails the run, by name;
 * - the number of tests may not fall below the floor kept in `test/floor.json`;
 * - the last line reads `N passed, N failed, N skipped`.
 */
import { execFileSync } from 'node:child_process';
import { globSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { parseArgs } from 'node:util';

const { values: opts, positionals } = parseArgs({
  options: { unit: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const log = (m: string) => process.stderr.write(`[test] ${m}\n`);
const ROOT = path.resolve(import.meta.dirname, '..');
process.chdir(ROOT);

const UNIT_GLOBS = [
  'schemas/src/**/*.test.ts',
  'packages/*/src/**/*.test.ts',
  'infra/*/src/**/*.test.ts',
  'services/*/src/**/*.test.ts',
  'test/unit/**/*.test.ts',
];
const SYSTEM_GLOBS = ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/faults/**/*.test.ts'];
/** After a file's last test ends, how long it may take to exit before it counts as hung. */
const EXIT_GRACE_MS = Number(process.env.TEST_EXIT_GRACE_MS ?? 30_000);

const selected = positionals.map((f) => path.resolve(f));
const all = [...globSync(UNIT_GLOBS), ...(opts.unit ? [] : globSync(SYSTEM_GLOBS))].map((f) =>
  path.resolve(f),
);
const files = (selected.length > 0 ? selected : all).sort();
const needsStack = files.some((f) => SYSTEM_GLOBS.some((g) => path.matchesGlob(path.relative(ROOT, f), g)));

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
if (needsStack) {
  const { endpoints } = await import('../test/src/harness.ts');
  const { exitOnStackProblem } = await import('@assurance/stack');
  const t0 = Date.now();
  Object.assign(process.env, await endpoints().catch(exitOnStackProblem('[test]')));
  log(
    `stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${process.env.KAFKA_BROKERS} ${process.env.SCHEMA_REGISTRY_URL} ${process.env.REDIS_URL}`,
  );
}
log(`${files.length} test files`);

interface FileState {
  /** Top-level tests declared and finished so far. */
  declared: number;
  finished: number;
  summary?: {
    tests: number;
    passed: number;
    failed: number;
    skipped: number;
    cancelled: number;
    todo: number;
  };
  hangTimer?: NodeJS.Timeout;
  hung?: boolean;
}
const state = new Map<string, FileState>(files.map((f) => [f, { declared: 0, finished: 0 }]));
const problems: string[] = [];
const LEAK_DIR = mkdtempSync(path.join(tmpdir(), 'test-leaks-'));
process.env.TEST_LEAK_DIR = LEAK_DIR;
process.on('exit', () => rmSync(LEAK_DIR, { recursive: true, force: true }));
const abort = new AbortController();

interface TestEventData {
  file?: string;
  name?: string;
  nesting?: number;
  counts?: FileState['summary'];
}

const stream = run({
  files,
  concurrency: Number(process.env.TEST_CONCURRENCY ?? 2),
  isolation: 'process',
  timeout: 180_000,
  signal: abort.signal,
  // Reports what keeps a finished file alive (scripts/test-leak-report.ts).
  execArgv: ['--import', path.join(ROOT, 'scripts/test-leak-report.ts')],
});

/**
 * SIGKILLs the process running `file` and everything it started (engines, servers): the run goes
 * on with the other files, and this one counts as failed. node:test runs each file in a child of
 * this process whose last argument is the file. Returns what kept it open (its leak report), or
 * undefined when no such process runs any more (it exited; its summary is on its way).
 */
function killFile(file: string): string | undefined {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] as string }));
  const root = rows.find((r) => r.ppid === process.pid && r.args.endsWith(file));
  if (!root) return undefined;
  let leak = '';
  try {
    leak = readFileSync(path.join(LEAK_DIR, `${root.pid}.leak`), 'utf8');
  } catch {
    // It has not written one (yet): nothing more to say.
  }
  const tree = [root.pid];
  for (let i = 0; i < tree.length; i++) {
    for (const r of rows) if (r.ppid === tree[i]) tree.push(r.pid);
  }
  for (const pid of tree.reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return leak;
}

// The runner reports each file as a top-level test of its own, named after the path it was given.
const isWrapper = (d: TestEventData) =>
  d.file !== undefined && d.name !== undefined && path.resolve(ROOT, d.name) === d.file;
stream.on('test:enqueue', (d: TestEventData) => {
  const s = d.file ? state.get(d.file) : undefined;
  if (s && d.nesting === 0 && !isWrapper(d)) s.declared++;
});
stream.on('test:complete', (d: TestEventData) => {
  const s = d.file ? state.get(d.file) : undefined;
  if (!s || !d.file || d.nesting !== 0 || isWrapper(d)) return;
  s.finished++;
  if (s.finished < s.declared || s.summary) return;
  // Every test of the file has ended: it now has EXIT_GRACE_MS to exit, or something it opened
  // (a socket, a timer, a child process) is keeping it alive.
  const file = d.file;
  clearTimeout(s.hangTimer);
  s.hangTimer = setTimeout(() => {
    if (s.summary || s.finished < s.declared) return;
    // node:test reports files in order, so a finished file's summary may wait behind a long one
    // running beside it: only a process still alive is hung.
    const leak = killFile(file);
    if (leak === undefined) return;
    s.hung = true;
    problems.push(
      `${path.relative(ROOT, file)}: all ${s.finished} tests ended but the file did not exit within ${EXIT_GRACE_MS / 1000} s; killed. ${leak || 'Something it opened is still open.'}`,
    );
  }, EXIT_GRACE_MS);
  s.hangTimer.unref();
});
stream.on('test:summary', (d: TestEventData) => {
  const s = d.file ? state.get(d.file) : undefined;
  if (!s || !d.counts) return;
  s.summary = d.counts;
  clearTimeout(s.hangTimer);
});

await new Promise<void>((resolve, reject) => {
  const out = stream.compose(spec);
  out.on('end', resolve);
  out.on('error', reject);
  out.pipe(process.stdout, { end: false });
});

let passed = 0;
let failed = 0;
let skipped = 0;
for (const [file, s] of state) {
  const rel = path.relative(ROOT, file);
  if (!s.summary) {
    if (s.hung) {
      // Already reported as hung.
    } else if (abort.signal.aborted) problems.push(`${rel}: did not finish (the run was aborted)`);
    else
      problems.push(`${rel}: ended without reporting its verdicts (process.exit or a crash outside a test?)`);
    failed++;
    continue;
  }
  if (s.summary.tests === 0) problems.push(`${rel}: reported no tests`);
  passed += s.summary.passed;
  failed += s.summary.failed + s.summary.cancelled;
  skipped += s.summary.skipped + s.summary.todo;
}

const total = passed + failed + skipped;
if (selected.length === 0) {
  const floors = JSON.parse(readFileSync(path.join(ROOT, 'test/floor.json'), 'utf8')) as Record<
    string,
    number
  >;
  const floor = opts.unit ? floors.unit : floors.all;
  if (floor === undefined) problems.push('test/floor.json has no floor for this run');
  else if (total < floor)
    problems.push(
      `${total} tests reported, fewer than the floor of ${floor} in test/floor.json: verdicts went missing (or tests were removed: lower the floor in the same change, saying why)`,
    );
  else if (total > floor)
    log(`${total} tests, above the floor of ${floor}: raise test/floor.json when you add tests`);
}

process.stdout.write('\n');
for (const p of problems) log(`✖ ${p}`);
process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(failed > 0 || problems.length > 0 ? 1 : 0);
