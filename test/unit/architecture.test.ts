import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/*
 * The boundaries of docs/architecture.md, checked on every source file: the floors import only
 * downwards, services never import each other, and each client library stays behind its port.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f.length > 0);
const sources = files.filter((f) => !f.startsWith('test/') && !f.startsWith('examples/'));

function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g))
    out.push(m[1] as string);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1] as string);
  return out;
}

/** The workspace a file belongs to, by its folder. */
function floorOf(file: string): string {
  const [top, name] = file.split('/');
  return top === 'schemas' || top === 'scripts' ? top : `${top}/${name}`;
}

/** What each floor may import of ours (`@assurance/<name>`); scripts, the top floor, may import anything. */
const ALLOWED: Record<string, readonly string[]> = {
  schemas: [],
  'packages/core': [],
  'packages/policy': ['schemas'],
  'packages/redis': ['core', 'schemas'],
  'packages/kafka': ['core', 'schemas'],
  'packages/ssf': ['core', 'schemas'],
  'packages/client': ['core', 'kafka', 'policy', 'schemas'],
  'services/engine': ['core', 'kafka', 'policy', 'redis', 'schemas'],
  'services/api': ['core', 'kafka', 'policy', 'redis', 'schemas', 'ssf'],
  'infra/stack': ['core', 'kafka', 'schemas'],
};

test('each floor imports only the floors below it, and no service imports another', () => {
  const wrong: string[] = [];
  for (const file of sources) {
    const floor = floorOf(file);
    const allowed = ALLOWED[floor];
    if (allowed === undefined) continue;
    const own = floor.split('/')[1] ?? floor;
    for (const spec of importsOf(file)) {
      const m = /^@assurance\/([a-z-]+)/.exec(spec);
      if (m && m[1] !== own && !allowed.includes(m[1] as string)) wrong.push(`${file} imports ${spec}`);
      if (spec.startsWith('.') && !path.join(path.dirname(file), spec).startsWith(`${floor}/`))
        wrong.push(`${file} reaches out of its workspace: ${spec}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('kafkajs stays behind the Kafka port and ioredis behind the Redis port', () => {
  const wrong: string[] = [];
  for (const file of sources) {
    for (const spec of importsOf(file)) {
      if (spec === 'kafkajs' && !file.startsWith('packages/kafka/')) wrong.push(`${file} imports kafkajs`);
      if (spec === 'ioredis' && !file.startsWith('packages/redis/')) wrong.push(`${file} imports ioredis`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the check sees imports at all', () => {
  // A scan that found nothing would pass the tests above whatever the code did.
  assert.ok(importsOf('services/engine/src/engine.ts').includes('@assurance/kafka'));
  assert.ok(importsOf('packages/kafka/src/client.ts').includes('kafkajs'));
  assert.ok(sources.length > 100, `${sources.length} source files`);
});
