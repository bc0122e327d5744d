/**
 * Writes `schemas/avro/<topic>.avsc` from the topic catalog (the zod schemas are the source).
 *
 *   node schemas/src/avro-generate.ts           # regenerate
 *   node schemas/src/avro-generate.ts --check   # exit 1 if a committed file is stale
 *
 * The drift test (avro.test.ts) makes the same comparison, so a schema change without regenerating
 * fails CI. The files exist for the registry bootstrap and for consumers in other languages.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { TOPICS } from './topics.ts';

/** Directory of the committed `.avsc` files. */
export const AVRO_DIR = fileURLToPath(new URL('../avro/', import.meta.url));

/** The expected `.avsc` files: file name → exact content. */
export function expectedAvroFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const topic of Object.values(TOPICS)) {
    if (topic.avro) files.set(`${topic.name}.avsc`, `${JSON.stringify(topic.avro, null, 2)}\n`);
  }
  return files;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function main(check: boolean): Promise<number> {
  await mkdir(AVRO_DIR, { recursive: true });
  let stale = 0;
  for (const [file, content] of expectedAvroFiles()) {
    const path = `${AVRO_DIR}${file}`;
    if (readOrEmpty(path) === content) continue;
    stale++;
    if (check) console.error(`stale: schemas/avro/${file}`);
    else {
      writeFileSync(path, content);
      console.log(`wrote schemas/avro/${file}`);
    }
  }
  return check && stale > 0 ? 1 : 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.includes('--check'));
