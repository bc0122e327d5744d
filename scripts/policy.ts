/**
 * `npm run policy -- <command>`: the policy CLI (packages/policy/src/cli.ts: validate, test), and
 * `backtest` (scripts/backtest.ts), which replays retained input through engines and so lives here,
 * above the engine.
 */
const [command, ...rest] = process.argv.slice(2);
if (command === 'backtest') {
  const { backtest } = await import('./backtest.ts');
  process.exitCode = await backtest(rest).catch((err: unknown) => {
    process.stderr.write(`[backtest] ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  });
} else {
  const { runCli } = await import('@assurance/policy/cli');
  process.exitCode = runCli(process.argv.slice(2));
}
