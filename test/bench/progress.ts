/**
 * A tiny progress bar on stderr. On a TTY it redraws one line in place (at most 10 times a second);
 * elsewhere (CI logs, `| tee`) it prints a plain line every few seconds, so logs stay readable.
 */
export interface Progress {
  /** Sets the absolute count done so far. */
  update(done: number, note?: string): void;
  /** Prints the final state and ends the line. */
  finish(note?: string): void;
}

const WIDTH = 28;

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

export function progress(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  const tty = stream.isTTY === true;
  const started = performance.now();
  let last = 0;
  let done = 0;
  let note = '';
  const line = () => {
    const secs = (performance.now() - started) / 1000;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const rate = secs > 0 ? done / secs : 0;
    const bar = '#'.repeat(Math.round(frac * WIDTH)).padEnd(WIDTH, '.');
    const extra = note ? `  ${note}` : '';
    return `${label.padEnd(22)} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${fmt(done)}/${fmt(total)}  ${fmt(rate)}/s  ${secs.toFixed(1)}s${extra}`;
  };
  const draw = (force: boolean) => {
    const now = performance.now();
    if (!force && now - last < (tty ? 100 : 5000)) return;
    last = now;
    if (tty) stream.write(`\r\x1b[2K${line()}`);
    else stream.write(`${line()}\n`);
  };
  return {
    update(n, n2) {
      done = n;
      if (n2 !== undefined) note = n2;
      draw(false);
    },
    finish(n2) {
      if (n2 !== undefined) note = n2;
      draw(true);
      if (tty) stream.write('\n');
    },
  };
}
