/**
 * Renders the tables of `docs/*.md` that code can say better than prose: the topic catalog, the
 * field tables of every event and output record (walked from the zod schemas), the vocabulary,
 * the default policy's settings and rules, the DLQ headers and the error codes with what the
 * engine does with each. Only the text between `<!-- generated:<name>:start -->` and
 * `<!-- generated:<name>:end -->` is replaced; the prose around it is left alone.
 *
 *   npm run docs               # rewrite docs/*.md
 *   npm run docs -- --check    # exit 1 if a committed file is stale
 *
 * It lives in the engine because it is the lowest workspace that may import all three sources:
 * `@assurance/schemas` (contract), `@assurance/core` (error dispositions) and `@assurance/policy`
 * (the default policy). The drift test (docs.test.ts) compares the committed files with this output.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type Disposition, dispositionOf, ERROR_CODES, type ErrorCode } from '@assurance/core';
import { loadPolicyFile, type Policy, type RuleEffects, type SignalMatcher } from '@assurance/policy';
import {
  ActiveSignal,
  AuditRecord,
  AVRO_NAMES,
  CONTRACT_ERROR_CODES,
  CompactTier,
  Decision,
  DecisionV2,
  DLQ_HEADERS,
  describeFields,
  Envelope,
  fieldTable,
  generateSigningKey,
  INPUT_TOPICS,
  KNOWN_ACTIONS,
  PHISHING_RESISTANT,
  refusesUnknownFields,
  TIERS,
  TierRequirement,
  TOPIC_NAMES,
  TOPICS,
  Trigger,
  unionVariants,
} from '@assurance/schemas';
import type { z } from 'zod';
import { EngineConfigSchema } from './config.ts';

/** Directory of the committed documentation. */
export const DOCS_DIR = new URL('../../../docs/', import.meta.url);

const code = (s: string | number) => `\`${s}\``;
const codes = (list: readonly (string | number)[]) => (list.length === 0 ? '—' : list.map(code).join(', '));
/** A table cell: pipes escaped, and `<…>` kept visible outside code spans (it would read as HTML). */
const cell = (s: string) =>
  s
    .replaceAll('|', '\\|')
    .replaceAll('\n', ' ')
    .split('`')
    .map((part, i) => (i % 2 === 1 ? part : part.replaceAll('<', '&lt;').replaceAll('>', '&gt;')))
    .join('`');

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/**
 * `14d`, `72h`, `10m`: the notation of the policy file. Days only from a week up, so that the
 * short lifetimes read in hours as the policy writes them.
 */
function duration(ms: number): string {
  const DAY = 86_400_000;
  if (ms > 0 && ms % DAY === 0 && ms >= 7 * DAY) return `${ms / DAY}d`;
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

// --- contract.md ---------------------------------------------------------------------------------

function topicCatalog(): string {
  const configs = (c: Readonly<Record<string, string>>) =>
    Object.entries(c)
      .map(([k, v]) => (k.endsWith('.ms') ? `${code(k)} ${duration(Number(v))}` : `${code(k)} ${v}`))
      .join(', ');
  return table(
    ['topic', 'kind', 'key', 'value', 'registry subject', 'partitions', 'topic configs'],
    TOPIC_NAMES.map((name) => {
      const t = TOPICS[name];
      return [
        code(name),
        t.kind,
        cell(t.keyDescription),
        t.avro
          ? code(t.avro.name)
          : name === 'assurance.shadow.v1'
            ? '`ShadowRecord` (JSON)'
            : 'the original bytes',
        t.subject ? code(t.subject) : '—',
        String(t.partitions),
        configs(t.configs),
      ];
    }),
  );
}

function engineLimits(): string {
  const defaults = EngineConfigSchema.parse({
    KAFKA_BROKERS: 'docs:9092',
    SCHEMA_REGISTRY_URL: 'http://docs',
    REDIS_URL: 'redis://docs',
    CHANNEL_HASH_SECRET: 'documentation-only-secret',
    DECISION_SIGNING_KEY: JSON.stringify(generateSigningKey()),
  });
  return table(
    ['limit', 'default', 'engine setting'],
    [
      [
        'largest message value read; larger ones are dead-lettered unread',
        `${defaults.MAX_MESSAGE_BYTES} bytes`,
        code('MAX_MESSAGE_BYTES'),
      ],
      [
        'how late an event may arrive and still be judged against the clears and unbinds before it',
        duration(defaults.LATE_EVENT_WINDOW),
        code('LATE_EVENT_WINDOW'),
      ],
      [
        "how long an identity's state outlives its last event (never while a signal is open-ended)",
        duration(defaults.STATE_TTL),
        code('STATE_TTL'),
      ],
      [
        "how far ahead of the engine's clock an event may be dated; later ones are dead-lettered",
        duration(defaults.MAX_CLOCK_SKEW),
        code('MAX_CLOCK_SKEW'),
      ],
    ],
  );
}

/** Records of the decision and audit topics that get a table of their own. */
const OUTPUT_RECORDS: readonly [string, z.core.$ZodType][] = [
  ['Decision', Decision],
  ['TierRequirement', TierRequirement],
  ['ActiveSignal', ActiveSignal],
  ['Trigger', Trigger],
  ['AuditRecord', AuditRecord],
  ['DecisionV2', DecisionV2],
  ['CompactTier', CompactTier],
];
const OUTPUT_REFS: ReadonlySet<z.core.$ZodType> = new Set(OUTPUT_RECORDS.map(([, s]) => s));

function fields(schema: z.core.$ZodType, refs?: ReadonlySet<z.core.$ZodType>): string {
  const rows = fieldTable(describeFields(schema, refs ? { refs } : {}));
  return refusesUnknownFields(schema) ? `${rows}\n\nAny other field is refused.` : rows;
}

function eventFields(topic: (typeof INPUT_TOPICS)[number]): string {
  const schema = TOPICS[topic].value;
  const variants = unionVariants(schema);
  if (!variants) return fields(schema);
  const discriminator = 'op';
  return [...variants]
    .map(([value, variant]) => `**${code(`${discriminator}: ${value}`)}**\n\n${fields(variant)}`)
    .join('\n\n');
}

/** What the vocabulary table adds to a list's values. */
const VOCABULARY_NOTES: Readonly<Record<string, string>> = {
  Authenticator: `phishing-resistant: ${codes(PHISHING_RESISTANT)}`,
  RecoveryChannelType: 'channels through which a sync account can itself be recovered',
  RecoveryMethod: '`helpdesk_kba` exists for completeness; the default policy never allows it',
  SubjectType: 'what a SOC signal may name',
  Tier: 'lowest to highest',
  Outcome: 'least to most strict',
  RiskLevel: 'lowest to highest',
  SignalCode: 'signals the engine keeps per identity (in decisions)',
  SignalScope: 'what a signal is attached to (in decisions)',
};

/**
 * Every closed list of the contract, under the name the field tables and the Avro enums use. Read
 * from AVRO_NAMES, so a new named enum cannot be missing here.
 */
function vocabulary(): string {
  const rows: string[][] = [];
  for (const [schema, name] of AVRO_NAMES) {
    const def = schema._zod.def as { type: string; entries?: Record<string, string> };
    if (def.type !== 'enum') continue;
    rows.push([code(name), codes(Object.values(def.entries ?? {})), VOCABULARY_NOTES[name] ?? '—']);
  }
  rows.push([
    'action (open)',
    codes(KNOWN_ACTIONS),
    'the actions the default policy maps at least; a policy may add more',
  ]);
  return table(['name', 'values', 'note'], rows);
}

// --- policy-behaviours.md ------------------------------------------------------------------------

function policySummary(policy: Policy): string {
  return table(
    ['policy', 'version', 'digest'],
    [[code('packages/policy/policies/default.yaml'), code(policy.version), code(policy.digest)]],
  );
}

function policyActions(policy: Policy): string {
  const rows = Object.entries(policy.actions).map(([action, tier]) => [code(action), code(tier)]);
  rows.push([
    'any other action',
    'refused: HTTP 400 `unknown-action` listing these, `unknown_action` from the client',
  ]);
  return table(['action', 'tier'], rows);
}

/** The README's short form: one row per tier with its baseline outcome and actions. */
function readmeActions(policy: Policy): string {
  return table(
    ['tier', 'with no signals', 'actions (default policy)'],
    TIERS.map((tier) => {
      const actions = Object.entries(policy.actions)
        .filter(([, t]) => t === tier)
        .map(([a]) => a);
      const t = policy.tiers[tier];
      const baseline =
        t.outcome === 'step_up' && t.requirePhishingResistant ? 'step_up, phishing-resistant' : t.outcome;
      return [code(tier), baseline, codes(actions)];
    }),
  );
}

function policyTiers(policy: Policy): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  return table(
    [
      'tier',
      'outcome',
      'acceptable authenticators',
      'recovery allowed',
      'phishing-resistant only',
      'liveness',
      'verified callback',
      'maxAge',
    ],
    TIERS.map((tier) => {
      const t = policy.tiers[tier];
      return [
        code(tier),
        code(t.outcome),
        codes(t.authenticators),
        codes(t.recovery),
        yes(t.requirePhishingResistant),
        yes(t.requireLiveness),
        yes(t.requireVerifiedCallback),
        duration(t.maxAge * 1000),
      ];
    }),
  );
}

function settingValue(key: string, value: unknown): string {
  if (value === null) return key.endsWith('Ms') ? 'until cleared' : 'none';
  if (typeof value === 'number') return key.endsWith('Ms') ? duration(value) : String(value);
  if (Array.isArray(value)) return codes(value.map(String));
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${code(k)} ${String(v)}`)
      .join(', ');
  }
  return String(value);
}

function policySignals(policy: Policy): string {
  return table(
    ['signal', 'settings'],
    Object.entries(policy.signals).map(([signal, settings]) => [
      code(signal),
      Object.entries(settings as Record<string, unknown>)
        .map(([k, v]) => `${k.replace(/Ms$/, '')}: ${settingValue(k, v)}`)
        .join('; '),
    ]),
  );
}

function matcher(m: Readonly<SignalMatcher>): string {
  const parts = [codes(m.signals)];
  if (m.scopes) parts.push(`on ${codes(m.scopes)}`);
  for (const [attr, values] of Object.entries(m.attributes ?? {})) parts.push(`${attr} ∈ ${codes(values)}`);
  return parts.join(' ');
}

/** Effects as the policy file would spell them, leaving out empty lists and defaults. */
function effectsText(effects: Readonly<RuleEffects>): string {
  const excludes = Object.entries(effects).some(
    ([k, v]) => k.startsWith('exclude') && Array.isArray(v) && v.length > 0,
  );
  return Object.entries(effects)
    .filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))
    .filter(([k, v]) => !(k === 'excludeFrom' && (v === 'low' || !excludes)))
    .map(
      ([k, v]) =>
        `${k}: ${Array.isArray(v) ? codes(v.map(String)) : k === 'holdFor' ? duration(Number(v)) : code(String(v))}`,
    )
    .join('; ');
}

function policyRules(policy: Policy): string {
  return table(
    ['rule', 'fires on', 'effects', 'reason codes'],
    policy.rules.map((rule) => {
      const when =
        rule.when.mode === 'all'
          ? `all of: ${rule.when.matchers.map((m) => `(${matcher(m)})`).join(' and ')}`
          : rule.when.matchers.map(matcher).join(' or ');
      return [code(rule.id), when, effectsText(rule.effects), codes(rule.reasons.map((r) => r.code))];
    }),
  );
}

function policyEngineReasons(policy: Policy): string {
  return table(
    ['reason code', 'meaning (operator text)'],
    Object.entries(policy.engineReasons).map(([reason, texts]) => [code(reason), cell(texts.admin)]),
  );
}

// --- dead-letters.md -----------------------------------------------------------------------------

/** What each header holds. A new header in DLQ_HEADERS fails the typecheck until it is described. */
const DLQ_HEADER_MEANINGS: Record<keyof typeof DLQ_HEADERS, string> = {
  errorClass: 'the error code (table below): why the message was dead-lettered',
  errorMessage:
    'a human-readable reason, at most 1000 characters; names fields and rules, never channel values',
  sourceTopic: 'the topic the message was read from (with its namespace, if the engine runs under one)',
  sourcePartition: 'its partition, in decimal',
  sourceOffset: 'its offset, in decimal',
  sourceTimestamp: 'its Kafka timestamp, as a UTC ISO 8601 instant',
  truncated:
    '`value`, `key` or `value,key` when the original was larger than `DLQ_MAX_BYTES` (value) or 1 KiB (key) and the record carries only its first bytes; absent otherwise',
  originalBytes: 'with `x-truncated`: the size of the original value in bytes',
  originalSha256: 'with `x-truncated`: the sha256 of the original value, hex',
};

function dlqHeaders(): string {
  return table(
    ['header', 'value'],
    (Object.keys(DLQ_HEADERS) as (keyof typeof DLQ_HEADERS)[]).map((k) => [
      code(DLQ_HEADERS[k]),
      DLQ_HEADER_MEANINGS[k],
    ]),
  );
}

/** What causes each error. A new code in ERROR_CODES fails the typecheck until it is described here. */
const ERROR_CAUSES: Record<ErrorCode, string> = {
  message_too_large: "the value is larger than the engine's `MAX_MESSAGE_BYTES`; it is not parsed",
  empty_message: 'the message has no value, or a value of zero bytes',
  unknown_encoding: 'the value is neither the registry wire format (first byte `0x00`) nor a JSON object',
  invalid_json: 'the value starts like a JSON object but does not parse as JSON',
  invalid_utf8:
    'a string (or the key) that is not strict UTF-8: invalid bytes, or a JSON `\\ud800`-style escape of a lone surrogate; refused rather than repaired, so two ids that differ only there never become one',
  compression_invalid:
    'the record batch the message came in does not decompress (corrupt, or a codec no Kafka version defines); every record of the batch is dead-lettered as a placeholder carrying the batch size, its sha256 and, on the first, its first 16 KiB',
  compression_too_large:
    "the record batch would decompress to more than the engine's `MAX_BATCH_DECOMPRESSED_BYTES` (a compression bomb); dead-lettered like `compression_invalid`",
  invalid_avro:
    'the registry wire format with no payload, a payload that does not decode with the schema its id names, or one whose block counts exceed what its bytes can hold',
  validation_failed:
    'the decoded value breaks the event schema (a missing, unknown or malformed field, a value outside its vocabulary or bounds); also a credential or token subject that does not name its identity unambiguously',
  key_mismatch: 'an identity-keyed event whose message key is not its `identityId`',
  future_event:
    "the event is dated more than the engine's `MAX_CLOCK_SKEW` ahead of its clock ([state](state.md#time))",
  unknown_schema_id: 'the registry answers that the schema id in the wire-format header does not exist',
  delivery_failed:
    "written by the API's Shared Signals transmitter, not the engine: a Security Event Token a receiver's push endpoint did not accept after its retries; the value is the SET, `x-ssf-stream` and `x-ssf-jti` name it ([shared-signals](shared-signals.md#transmitting))",
  registry_unavailable: 'the schema id is not cached and the registry cannot be asked now',
  redis_unavailable: 'Redis did not answer',
  kafka_unavailable:
    "Kafka did not accept a produce, with an error worth retrying; also a broker that came back without the producer's sequence numbers (after a crash): the producer is replaced first",
  stale_write:
    "the identity's decision sequence moved while this engine was deciding it (another engine owned it for a moment)",
  store_lost:
    'the Redis store lost data, was reset or is being verified after a reconnect ([state](state.md#data-loss)); nothing is decided from it until it is recovered',
  store_mismatch:
    'the Redis store was provisioned by another deployment (key prefix or channel secret differ) ([state](state.md#fingerprint))',
  state_corrupt: "a stored state the engine cannot read, or one that names another identity than its key's",
  kafka_rejected: 'Kafka refused a produce in a way retrying cannot fix (a record too large for the broker)',
  config_invalid: "the engine's configuration is invalid",
  policy_invalid: 'the policy file is invalid',
  script_failed: 'a Redis script failed for a reason other than the connection',
  internal: 'a bug',
};

const DISPOSITION_WORDS: Record<Disposition, string> = {
  dead_letter: 'dead-letter, then go on',
  retry: 'retry after `RETRY_BACKOFF`, offsets not committed',
  quarantine:
    'retry after `RETRY_BACKOFF` for at most `RETRY_BUDGET`, then dead-letter it and fail its subject closed',
  stop: 'stop the engine (the orchestrator restarts it)',
};

function errorCodes(): string {
  const contract = new Set<string>(CONTRACT_ERROR_CODES);
  return table(
    ['`x-error-class`', 'the engine will', 'cause', 'contract error'],
    ERROR_CODES.map((c) => [
      code(c),
      DISPOSITION_WORDS[dispositionOf(c)],
      cell(ERROR_CAUSES[c]),
      contract.has(c) ? 'yes' : 'no',
    ]),
  );
}

// --- rendering -----------------------------------------------------------------------------------

/** Every generated section by marker name. Each must appear exactly once across docs/. */
export function sections(policy: Policy = loadPolicyFile()): Map<string, () => string> {
  return new Map<string, () => string>([
    ['topics', topicCatalog],
    ['limits', engineLimits],
    // Not `fields()`: the envelope is never sent alone, so its strictness says nothing to a producer.
    ['envelope', () => fieldTable(describeFields(Envelope))],
    ...INPUT_TOPICS.map((t): [string, () => string] => [`event:${t}`, () => eventFields(t)]),
    ...OUTPUT_RECORDS.map(([name, schema]): [string, () => string] => [
      `record:${name}`,
      () => fields(schema, new Set([...OUTPUT_REFS].filter((s) => s !== schema))),
    ]),
    ['vocabulary', vocabulary],
    ['policy-summary', () => policySummary(policy)],
    ['policy-actions', () => policyActions(policy)],
    ['readme-actions', () => readmeActions(policy)],
    ['policy-tiers', () => policyTiers(policy)],
    ['policy-signals', () => policySignals(policy)],
    ['policy-rules', () => policyRules(policy)],
    ['policy-engine-reasons', () => policyEngineReasons(policy)],
    ['dlq-headers', dlqHeaders],
    ['error-codes', errorCodes],
  ]);
}

const BLOCK =
  /<!-- generated:([A-Za-z0-9.:_-]+):start -->\n[\s\S]*?<!-- generated:([A-Za-z0-9.:_-]+):end -->/g;
const START = /<!-- generated:([A-Za-z0-9.:_-]+):start -->/g;

/**
 * The committed files as they should read: file name → content. Throws for a marker without its
 * end, an unknown section, or a section used twice or not at all, so a doc cannot silently lose a
 * table.
 */
export function expectedDocs(
  current: ReadonlyMap<string, string>,
  renderers: ReadonlyMap<string, () => string> = sections(),
): Map<string, string> {
  const used = new Map<string, string>();
  const out = new Map<string, string>();
  for (const [file, text] of current) {
    const starts = [...text.matchAll(START)].length;
    let blocks = 0;
    const next = text.replace(BLOCK, (_m, name: string, end: string) => {
      blocks++;
      if (name !== end) throw new Error(`${file}: generated:${name} ends with generated:${end}`);
      const render = renderers.get(name);
      if (!render) throw new Error(`${file}: unknown generated section "${name}"`);
      const first = used.get(name);
      if (first) throw new Error(`${file}: generated:${name} already appears in ${first}`);
      used.set(name, file);
      return `<!-- generated:${name}:start -->\n${render()}\n<!-- generated:${name}:end -->`;
    });
    if (blocks !== starts) throw new Error(`${file}: a generated:…:start marker has no matching end`);
    out.set(file, next);
  }
  const unused = [...renderers.keys()].filter((name) => !used.has(name));
  if (unused.length > 0) throw new Error(`no place in docs/ for generated sections: ${unused.join(', ')}`);
  return out;
}

/** The markdown files under docs/, by name, and the README (`../README.md`), which lists the actions. */
export function readDocs(): Map<string, string> {
  const files = readdirSync(DOCS_DIR)
    .filter((f) => f.endsWith('.md'))
    .sort();
  files.push('../README.md');
  return new Map(files.map((f) => [f, readFileSync(new URL(f, DOCS_DIR), 'utf8')]));
}

function main(check: boolean): number {
  const current = readDocs();
  let stale = 0;
  for (const [file, content] of expectedDocs(current)) {
    if (current.get(file) === content) continue;
    stale++;
    if (check) console.error(`stale: docs/${file}`);
    else {
      writeFileSync(new URL(file, DOCS_DIR), content);
      console.log(`wrote docs/${file}`);
    }
  }
  return check && stale > 0 ? 1 : 0;
}

if (import.meta.main) process.exitCode = main(process.argv.includes('--check'));
