import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCaseFile } from './case-file.ts';
import { runCases } from './case-runner.ts';
import { defaultPolicyPath, formatIssue, loadPolicyFile, type Policy, PolicyError } from './load.ts';

/**
 * `node packages/policy/src/cli.ts validate [policy.yaml ...]`
 * `node packages/policy/src/cli.ts test [--policy policy.yaml] [cases.yaml ...]`
 *
 * Exit codes: 0 all good, 1 invalid policy or failing case, 2 usage error.
 */

const USAGE = `usage:
  cli.ts validate [policy.yaml ...]                  validate policies (default: the shipped default policy)
  cli.ts test [--policy file] [cases.yaml ...]       run case files (default: packages/policy/cases/*.cases.yaml)`;

/** Where the shipped case files live. */
export const defaultCasesDir: string = fileURLToPath(new URL('../cases/', import.meta.url));

/** Output sinks, injectable so tests can run the CLI in-process. */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const consoleIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

function reportError(io: CliIo, error: unknown): void {
  if (error instanceof PolicyError) {
    io.err(`✗ ${error.source}: ${error.issues.length} problem(s)`);
    for (const issue of error.issues) io.err(`  ${formatIssue(error.source, issue)}`);
  } else {
    io.err(`✗ ${(error as Error)?.stack ?? String(error)}`);
  }
}

function validate(files: string[], io: CliIo): number {
  let status = 0;
  for (const file of files.length ? files : [defaultPolicyPath]) {
    try {
      const policy = loadPolicyFile(file);
      io.out(
        `✓ ${file}: version ${policy.version}, ${policy.digest}, ${policy.rules.length} rules, ${Object.keys(policy.actions).length} actions`,
      );
    } catch (error) {
      reportError(io, error);
      status = 1;
    }
  }
  return status;
}

function test(args: string[], io: CliIo): number {
  let override: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--policy') {
      override = args[++i];
      if (!override) {
        io.err(USAGE);
        return 2;
      }
    } else files.push(arg);
  }
  if (files.length === 0) {
    for (const name of readdirSync(defaultCasesDir).sort()) {
      if (name.endsWith('.cases.yaml')) files.push(join(defaultCasesDir, name));
    }
  }
  const policies = new Map<string, Policy>();
  let passed = 0;
  let failed = 0;
  let broken = 0;
  for (const file of files) {
    try {
      const loaded = loadCaseFile(file);
      const policyPath = override ?? loaded.policyPath;
      const policy = policies.get(policyPath) ?? loadPolicyFile(policyPath);
      policies.set(policyPath, policy);
      io.out(`${file} (policy ${policy.version} ${policy.digest.slice(0, 19)}…)`);
      for (const result of runCases(policy, loaded.file.cases, new Date(loaded.file.now))) {
        if (result.failures.length === 0) {
          passed++;
          io.out(`  ✓ ${result.name}`);
        } else {
          failed++;
          io.out(`  ✗ ${result.name}`);
          for (const failure of result.failures) io.out(`      ${failure}`);
        }
      }
    } catch (error) {
      broken++;
      reportError(io, error);
    }
  }
  io.out(`${passed} passed, ${failed} failed${broken ? `, ${broken} file(s) unreadable` : ''}`);
  return failed > 0 || broken > 0 ? 1 : 0;
}

/** Runs the CLI with `args` (without `node cli.ts`) and returns the exit code. */
export function runCli(args: readonly string[], io: CliIo = consoleIo): number {
  const [command, ...rest] = args;
  if (command === 'validate') return validate(rest, io);
  if (command === 'test') return test(rest, io);
  io.err(USAGE);
  return command === 'help' || command === '--help' ? 0 : 2;
}

if (import.meta.main) {
  process.exitCode = runCli(process.argv.slice(2));
}
