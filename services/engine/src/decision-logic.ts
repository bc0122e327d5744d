import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A digest of the code that turns a state into a decision: the policy package's sources and the
 * engine's decision assembly. Recorded with each decision (with the policy's digest), it lets the
 * decider skip an event that changed nothing only while the same code would decide the same: an
 * upgrade that changes how decisions are made re-decides each identity at its next event.
 */
export function decisionLogicDigest(): string {
  const hash = createHash('sha256');
  const policyDir = dirname(fileURLToPath(import.meta.resolve('@assurance/policy')));
  const files = readdirSync(policyDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(policyDir, f));
  files.push(join(dirname(fileURLToPath(import.meta.url)), 'decision.ts'));
  for (const f of files) hash.update(f.slice(f.lastIndexOf('/'))).update(readFileSync(f));
  return hash.digest('base64url');
}
