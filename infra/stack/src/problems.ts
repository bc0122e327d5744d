import { closeSync, openSync, readSync, statSync } from 'node:fs';

/**
 * Something the person running the stack fixes on their machine: a missing tool, a busy port, a
 * service that would not start, a bad STACK_* value. The message is the whole story, remedy
 * included, so entry points print it as it is (`exitOnStackProblem`): a stack trace would only bury
 * the remedy under frames of our own code.
 */
export class StackProblem extends Error {
  override readonly name: string = 'StackProblem';
}

/** A tool the stack needs is missing or unusable; the message says how to get it. */
export class PrerequisiteError extends StackProblem {
  override readonly name = 'PrerequisiteError';
}

/** A local server was started but never answered its health probe, or died while starting. */
export class ServiceStartError extends StackProblem {
  override readonly name = 'ServiceStartError';
  readonly service: string;
  readonly logFiles: readonly string[];
  constructor(service: string, logFiles: readonly string[], message: string) {
    super(message);
    this.service = service;
    this.logFiles = logFiles;
  }
}

/**
 * What an entry point prints for `err`: the problem's message with `tag` before each unindented
 * line (several problems at once read as several paragraphs), or undefined when `err` is not a
 * StackProblem (an unexpected error is a bug, and its stack trace is what fixes it).
 */
export function describeStackProblem(err: unknown, tag: string): string | undefined {
  if (!(err instanceof StackProblem)) return undefined;
  const lines = err.message.trimEnd().split('\n');
  return `${lines.map((l) => (/^\s/.test(l) ? l : `${tag} ${l}`)).join('\n')}\n`;
}

/**
 * For entry points (`npm start`, `serve`, `test`, `bench`, the stack CLI), as the rejection handler
 * of whatever brings the stack up: prints a StackProblem without a stack trace and exits 1;
 * rethrows anything else.
 */
export function exitOnStackProblem(tag: string): (err: unknown) => never {
  return (err: unknown) => {
    const text = describeStackProblem(err, tag);
    if (text === undefined) throw err;
    process.stderr.write(text);
    process.exit(1);
  };
}

/** Each file's size now, so that a later `logTails` shows only what was written after. */
export function logMarks(files: readonly string[]): Map<string, number> {
  return new Map(files.map((f) => [f, sizeOf(f)]));
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The end of `file` from byte `from` on (at most 64 KiB of it); all of it if it shrank since. */
function readFrom(file: string, from: number): string {
  const size = sizeOf(file);
  const start = Math.max(size < from ? 0 : from, size - 64 * 1024);
  if (size <= start) return '';
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size - start);
    const n = readSync(fd, buf, 0, buf.length, start);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The last `lines` lines of each log that has any, indented under a heading, for a problem's
 * message. With `marks`, only what was written since (logs are appended to across starts, and an
 * earlier start's error would mislead).
 */
export function logTails(
  files: readonly string[],
  { marks, lines = 15, width = 300 }: { marks?: Map<string, number>; lines?: number; width?: number } = {},
): string {
  const parts: string[] = [];
  for (const file of files) {
    const text = readFrom(file, marks?.get(file) ?? 0).trimEnd();
    if (text === '') continue;
    const last = text
      .split('\n')
      .slice(-lines)
      .map((l) => `    ${l.length > width ? `${l.slice(0, width)}…` : l}`);
    parts.push(`  last lines of ${file}:\n${last.join('\n')}`);
  }
  return parts.length > 0 ? parts.join('\n') : `  nothing new in ${files.join(' or ')}`;
}
