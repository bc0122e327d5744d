import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CONTRACT_ERROR_CODES } from './contract-error.ts';
import { isTopicName, TOPICS, type ValueTopicName } from './topics.ts';

/**
 * Golden fixtures: `schemas/fixtures/<topic>/{valid,invalid}/*.json` hold the exact bytes a producer
 * sends (never reformatted: biome skips them), and `cases.json` beside them says what each must
 * produce: the normalized value and Kafka key, or the ContractError code and issue paths. Exported so
 * integration tests can replay the same messages through real Kafka.
 */

/** Directory holding one sub-directory per topic. */
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

const CasesFile = z
  .object({
    topic: z.string(),
    /** The instant validation runs at, so "24h in the future" is reproducible. */
    now: z.iso.datetime(),
    valid: z.array(
      z.object({ file: z.string(), about: z.string(), key: z.string(), expected: z.unknown() }).strict(),
    ),
    invalid: z.array(
      z
        .object({
          file: z.string(),
          about: z.string(),
          code: z.enum(CONTRACT_ERROR_CODES),
          /** Exactly the issue paths expected (`validation_failed` only), `<root>` for the value itself. */
          paths: z.array(z.string()),
          /** A substring of one issue (or of the error message). */
          message: z.string().optional(),
        })
        .strict(),
    ),
  })
  .strict();

type Cases = z.output<typeof CasesFile>;
/** A fixture that must decode to `expected` with Kafka key `key`. */
export type ValidFixture = Cases['valid'][number] & { bytes: Buffer };
/** A fixture that must be rejected with `code` (and, for validation, exactly `paths`). */
export type InvalidFixture = Cases['invalid'][number] & { bytes: Buffer };

/** All fixtures of one topic. */
export interface TopicFixtures {
  topic: ValueTopicName;
  now: Date;
  valid: ValidFixture[];
  invalid: InvalidFixture[];
  /** Files present in valid/ and invalid/ (to catch fixtures no case mentions). */
  files: string[];
}

/** Loads and checks every topic's `cases.json` and the bytes of every fixture it lists. */
export function loadFixtures(): TopicFixtures[] {
  return readdirSync(FIXTURES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const dir = `${FIXTURES_DIR}${d.name}/`;
      const cases = CasesFile.parse(JSON.parse(readFileSync(`${dir}cases.json`, 'utf8')));
      if (cases.topic !== d.name || !isTopicName(d.name) || TOPICS[d.name].value === null) {
        throw new Error(`fixtures/${d.name}: not a value topic, or cases.json names another topic`);
      }
      const bytes = (file: string) => readFileSync(`${dir}${file}`);
      const files = ['valid', 'invalid'].flatMap((sub) =>
        readdirSync(`${dir}${sub}`).map((f) => `${sub}/${f}`),
      );
      return {
        topic: d.name as ValueTopicName,
        now: new Date(cases.now),
        valid: cases.valid.map((c) => ({ ...c, bytes: bytes(c.file) })),
        invalid: cases.invalid.map((c) => ({ ...c, bytes: bytes(c.file) })),
        files,
      };
    });
}
