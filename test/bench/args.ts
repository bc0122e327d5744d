/** Command-line flags of `npm run bench`, with the defaults the report states. */
import { parseArgs } from 'node:util';

export interface BenchArgs {
  /** The identities of the run: the last scale point. */
  readonly identities: number;
  /**
   * Identity counts at which the throughput phases run, ascending: each point binds the identities
   * it adds, then runs the mix over all of them, so the cost per event is printed at each size.
   */
  readonly scalePoints: readonly number[];
  /** Events in the mix after the bindings. */
  readonly events: number;
  /** Offered rates of the latency phases, events/s, one phase each in this order. */
  readonly rates: readonly number[];
  /** Length of the latency phase, seconds. */
  readonly duration: number;
  /** Requests/s offered to each HTTP endpoint in the read-path phase. */
  readonly readRate: number;
  readonly seed: number;
  /** Messages per producer send in the throughput phases. */
  readonly chunk: number;
  /** Write a CPU profile of the engine and print its hottest functions. */
  readonly profile: boolean;
  readonly quick: boolean;
  /**
   * Most input events produced but not yet decided (router + decider lag) during the throughput
   * phases; 0 (the default) produces everything at once, as a replay or a backlog arrives.
   */
  readonly window: number;
  /** Seconds without any progress before the run is declared stalled. */
  readonly stall: number;
  /** Engine config overrides (`--env KEY=VALUE`, repeatable), e.g. CONSUMER_CONCURRENCY=12. */
  readonly env: Record<string, string>;
  /** Keep the temporary work folder (engine log, CPU profiles) instead of deleting it at the end. */
  readonly keepWorkDir: boolean;
}

export const USAGE = `npm run bench -- [flags]

  --identities N   identities to bind and drive            (default 100000; --quick: 5000);
                   a list (10000,100000,1000000) makes scale points: each binds the identities it
                   adds and runs the mix over all so far, and the report prints the cost per event
                   at each
  --events N       events in the mix after the bindings     (default 100000; --quick: 5000)
  --rate R[,R…]    offered rates of the latency phases, ev/s, one phase each
                   (default 1000,5000: the issue's baseline rate, then its target rate)
  --duration S     length of the latency phase, seconds     (default 20; --quick: 10)
  --read-rate R    requests/s offered to each API endpoint   (default 5000; for 10 s, --quick: 5 s)
  --seed N         workload seed                            (default 1)
  --chunk N        messages per producer send (throughput)  (default 5000; 120 with --window)
  --window N       throughput phases: send only while fewer than N events are produced and
                   not yet decided (router + decider lag); default 0: everything at once
  --env KEY=VALUE  engine config override, repeatable (e.g. --env CONSUMER_CONCURRENCY=12)
  --stall S        give up after S seconds without progress       (default 60)
  --profile        CPU-profile the engine and print its hottest functions
  --quick          a smoke run: 5000 identities, 5000 mix events, 10 s of latency
  --keep-work-dir  keep the temporary folder with the engine's log (and CPU profiles); by
                   default it is deleted at the end, after a failure or Ctrl-C too
  --help`;

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v.replaceAll('_', ''));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

export function parseBenchArgs(argv: string[]): BenchArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      identities: { type: 'string' },
      events: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      'read-rate': { type: 'string' },
      seed: { type: 'string' },
      chunk: { type: 'string' },
      window: { type: 'string' },
      stall: { type: 'string' },
      env: { type: 'string', multiple: true },
      profile: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      'keep-work-dir': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const points = (values.identities ?? String(quick ? 5000 : 100_000))
    .split(',')
    .map((v) => positiveInt('identities', v.trim(), 0));
  if (points.some((n, i) => i > 0 && n <= (points[i - 1] as number)))
    throw new Error(`--identities scale points must grow: ${values.identities}`);
  return {
    identities: points.at(-1) as number,
    scalePoints: points,
    events: positiveInt('events', values.events, quick ? 5000 : 100_000),
    rates: (values.rate ?? '1000,5000').split(',').map((v) => positiveInt('rate', v.trim(), 0)),
    duration: positiveInt('duration', values.duration, quick ? 10 : 20),
    readRate: positiveInt('read-rate', values['read-rate'], 5000),
    seed: positiveInt('seed', values.seed, 1),
    chunk: positiveInt(
      'chunk',
      values.chunk,
      values.window === undefined || values.window === '0' ? 5000 : 120,
    ),
    profile: values.profile === true,
    window:
      values.window === undefined || values.window === '0' ? 0 : positiveInt('window', values.window, 0),
    stall: positiveInt('stall', values.stall, 60),
    env: Object.fromEntries(
      (values.env ?? []).map((kv) => {
        const i = kv.indexOf('=');
        if (i <= 0) throw new Error(`--env expects KEY=VALUE, got "${kv}"`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    ),
    quick,
    keepWorkDir: values['keep-work-dir'] === true,
  };
}
