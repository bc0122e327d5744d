import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CliIo, defaultCasesDir, runCli } from './cli.ts';
import { defaultPolicyPath } from './load.ts';

function capture(): CliIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(l) };
}

const dir = mkdtempSync(join(tmpdir(), 'policy-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const shippedCases = join(defaultCasesDir, 'default.cases.yaml');

describe('cli validate', () => {
  it('accepts the default policy and prints version and digest', () => {
    const io = capture();
    assert.equal(runCli(['validate'], io), 0);
    assert.match(io.lines.join('\n'), /✓ .*default\.yaml: version 1\.1\.0, sha256:[0-9a-f]{64}/);
  });

  it('rejects a broken policy with file, line, path and reason', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, readFileSync(defaultPolicyPath, 'utf8').replace('window: 14d', 'window: fortnight'));
    const io = capture();
    assert.equal(runCli(['validate', file], io), 1);
    assert.match(
      io.lines.join('\n'),
      /broken\.yaml:\d+: signals\.sim_swap\.window: invalid duration "fortnight"/,
    );
  });
});

describe('cli test', () => {
  it('passes every shipped case against the default policy', () => {
    const io = capture();
    assert.equal(runCli(['test', shippedCases], io), 0, io.lines.join('\n'));
    const summary = io.lines.at(-1) ?? '';
    assert.match(summary, /^(\d+) passed, 0 failed$/);
    assert.ok(Number(summary.split(' ')[0]) >= 15);
  });

  it('runs the shipped cases by default', () => {
    const io = capture();
    assert.equal(runCli(['test'], io), 0);
  });

  it('fails with a readable diff when a policy change breaks a case', () => {
    const weakened = join(dir, 'weakened.yaml');
    // A tempting "fix" for support tickets: stop excluding SMS after a SIM swap.
    writeFileSync(
      weakened,
      readFileSync(defaultPolicyPath, 'utf8').replace(
        'excludeBound: [sms_otp, voice_otp]\n      excludeRecoveryBound: [sms_code, helpdesk_verified_callback]\n      requirePhishingResistant: high\n      risk: elevated',
        'requirePhishingResistant: high\n      risk: elevated',
      ),
    );
    const io = capture();
    assert.equal(runCli(['test', '--policy', weakened, shippedCases], io), 1);
    const output = io.lines.join('\n');
    assert.match(output, /✗ behaviour 2: SIM swap excludes codes and callbacks/);
    assert.match(output, /tiers\.medium\.excludes: expected to include \[sms_otp, voice_otp\]/);
    assert.match(
      output,
      /tiers\.medium\.recoveryExcludes: expected to include \[sms_code, helpdesk_verified_callback\], got \[helpdesk_kba\]/,
    );
    assert.match(
      output,
      /tiers\.medium\.enrolled: expected \[totp, push\], got \[sms_otp, totp, push\] \(unexpected \[sms_otp\]\)/,
    );
    assert.match(output, /\d+ passed, [1-9]\d* failed$/);
  });

  it('checks what excludes a method, not only that it is excluded', () => {
    const file = join(dir, 'reasons.cases.yaml');
    writeFileSync(
      file,
      [
        'now: 2025-06-01T12:00:00Z',
        'cases:',
        '  - name: totp blamed on the phone',
        '    bindings:',
        '      - { channel: phone:main, authenticators: [sms_otp] }',
        '      - { channel: device:laptop, authenticators: [totp, security_key] }',
        '    signals:',
        '      - { code: sim_swap, on: phone:main }',
        '    expect:',
        '      tiers:',
        '        high: { excludedBecause: { totp: [sim_swap.phone_bound] } }',
        '        medium: { excludedBecause: { totp: [sim_swap.phone_bound] } }',
      ].join('\n'),
    );
    const io = capture();
    assert.equal(runCli(['test', file], io), 1);
    const output = io.lines.join('\n');
    assert.match(
      output,
      /tiers\.high\.excludedBecause\.totp: expected \[sim_swap\.phone_bound\], got \[phishing_resistance\.required\]/,
    );
    assert.match(output, /tiers\.medium\.excludedBecause\.totp: not excluded/);
  });

  it('reports an invalid case file with its path', () => {
    const file = join(dir, 'bad.cases.yaml');
    writeFileSync(
      file,
      'now: 2025-06-01T12:00:00Z\ncases:\n  - name: x\n    signals: [{ code: sim_swapp, on: phone:a }]\n    expect: { tiers: {} }\n',
    );
    const io = capture();
    assert.equal(runCli(['test', file], io), 1);
    assert.match(
      io.lines.join('\n'),
      /bad\.cases\.yaml:4: cases\[0\]\.signals\[0\]\.code: unknown signal code "sim_swapp"/,
    );
  });

  it('returns 2 on usage errors', () => {
    assert.equal(runCli(['frobnicate'], capture()), 2);
    assert.equal(runCli(['test', '--policy'], capture()), 2);
  });

  it('works as a real process with the exit code', () => {
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    const out = execFileSync(process.execPath, [cli, 'test', shippedCases], { encoding: 'utf8' });
    assert.match(out, /passed, 0 failed/);
    assert.throws(
      () => execFileSync(process.execPath, [cli, 'validate', join(dir, 'missing.yaml')], { stdio: 'pipe' }),
      {
        status: 1,
      },
    );
  });
});
