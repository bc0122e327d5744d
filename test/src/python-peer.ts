import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@assurance/stack';

const REQUIREMENTS = path.join(REPO_ROOT, 'test/wire-compat/requirements.txt');
const VENV = path.join(REPO_ROOT, '.stack/python-peer');

/**
 * A Python virtualenv with confluent-kafka from PyPI, made once under the stack folder (and again
 * when requirements.txt changes). Returns the venv's python.
 */
export function pythonPeer(): string {
  const python = path.join(VENV, 'bin/python');
  const stamp = path.join(VENV, '.requirements');
  const want = readFileSync(REQUIREMENTS, 'utf8');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return python;
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  };
  run('python3', ['-m', 'venv', VENV]);
  run(python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '-r', REQUIREMENTS]);
  writeFileSync(stamp, want);
  return python;
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
