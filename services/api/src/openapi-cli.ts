/**
 * Writes the committed OpenAPI document: `npm run openapi -w @assurance/api`, or
 * `node services/api/src/openapi-cli.ts [--check]`. With --check, exits 1 when the committed copy
 * differs from what the code generates.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderOpenApi } from './openapi.ts';
import { OPENAPI_FILE } from './openapi-file.ts';

const text = renderOpenApi();
if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(OPENAPI_FILE, 'utf8');
  } catch {
    // Missing counts as different.
  }
  if (committed !== text) {
    process.stderr.write(`${OPENAPI_FILE} is out of date: run node services/api/src/openapi-cli.ts\n`);
    process.exit(1);
  }
  process.stdout.write('openapi.json is up to date\n');
} else {
  writeFileSync(OPENAPI_FILE, text);
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`);
}
