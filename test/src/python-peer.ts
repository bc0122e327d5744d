import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@assurance/stack';

const REQUIREMENTS = path.join(REPO_ROOT, 'test/wire-compat/requirements.txt');
const VENV = path.join(REPO_ROOT, '.stack/python-peer');

/**
 * A Python virtualenv with `requirements` (a requirements.txt) from PyPI, made once under `venv`
 * (and again when the requirements change). Returns the venv's bin folder.
 */
export function pythonVenv(venv: string, requirements: string): string {
  const bin = path.join(venv, 'bin');
  const python = path.join(bin, 'python');
  const stamp = path.join(venv, '.requirements');
  const want = readFileSync(requirements, 'utf8');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return bin;
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  };
  run('python3', ['-m', 'venv', venv]);
  run(python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '-r', requirements]);
  writeFileSync(stamp, want);
  return bin;
}

/** The venv with confluent-kafka (test/wire-compat): returns its python. */
export function pythonPeer(): string {
  return path.join(pythonVenv(VENV, REQUIREMENTS), 'python');
}

/** One message for the Python producer (test/wire-compat/produce.py). */
export interface PythonItem {
  readonly topic: string;
  readonly key: string | null;
  readonly value?: unknown;
  /** `avro` (default: confluent-kafka's own serializer), `json`, or `raw` (`raw` bytes as they are). */
  readonly encoding?: 'avro' | 'json' | 'raw';
  readonly raw?: Buffer;
  readonly compression?: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
}

/** Runs the Python producer on JSON-lines input; returns its report. */
export function producePython(
  brokers: string,
  registryUrl: string,
  items: readonly PythonItem[],
): { delivered: string[]; errors: string[] } {
  const lines = items.map(({ raw, ...i }) =>
    JSON.stringify({ ...i, ...(raw ? { raw_b64: raw.toString('base64') } : {}) }),
  );
  const r = spawnSync(
    pythonPeer(),
    [path.join(REPO_ROOT, 'test/wire-compat/produce.py'), brokers, registryUrl],
    {
      input: lines.join('\n'),
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  if (r.status !== 0) throw new Error(`python producer failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { delivered: string[]; errors: string[] };
}
