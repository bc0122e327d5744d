import type { z } from 'zod';
import { AVRO_NAMES } from './avro-names.ts';
import { Channel, RecoveryChannel } from './events/channel-binding.ts';
import { Subject } from './events/compromise-signal.ts';
import {
  CountryCode,
  DeviceId,
  EmailAddress,
  ExpiryTimestamp,
  IdentityId,
  IpAddress,
  OpaqueId,
  PhoneNumber,
  Timestamp,
} from './fields.ts';
import {
  EMAIL_MAX,
  ID_MAX,
  MAX_FUTURE_SKEW_MS,
  MAX_TIMESTAMP,
  MIN_TIMESTAMP,
  PHONE_INPUT_MAX,
} from './normalize.ts';

/**
 * Field tables for the documentation (docs/contract.md), walked from the zod schemas so that a
 * field, a bound or an optional marker cannot change without the docs changing with it. Like the
 * Avro walk (avro.ts) it reads the INPUT side of transforms: what a producer may send. What a
 * transform does is invisible to a walk, so the shared field schemas carry a note here instead.
 */

type ZType = z.core.$ZodType;

/** Loose view of zod v4 definitions: only what the walk reads. */
interface Def {
  type: string;
  innerType?: ZType;
  in?: ZType;
  out?: ZType;
  element?: ZType;
  shape?: Record<string, ZType>;
  catchall?: ZType;
  entries?: Record<string, string | number>;
  values?: unknown[];
  keyType?: ZType;
  valueType?: ZType;
  defaultValue?: unknown;
  format?: string;
  checks?: { _zod: { def: CheckDef } }[];
}
interface CheckDef {
  check: string;
  minimum?: number;
  maximum?: number;
  length?: number;
  value?: number;
  inclusive?: boolean;
  format?: string;
  pattern?: RegExp;
}
const defOf = (schema: ZType): Def => schema._zod.def as unknown as Def;

const day = (d: Date) => d.toISOString().slice(0, 10);

/**
 * What the shared field schemas accept and how they normalize it. Keyed by instance, like
 * AVRO_NAMES, so every field built on one of them gets the same words; the bounds come from the
 * constants the normalizers use.
 */
export const FIELD_NOTES: ReadonlyMap<ZType, string> = new Map<ZType, string>([
  [
    PhoneNumber,
    `international number (leading \`+\` or \`00\`; spaces, dashes, dots and parentheses allowed; ≤ ${PHONE_INPUT_MAX} chars) → E.164 (\`+\` and 8..15 digits); the country is never inferred`,
  ],
  [EmailAddress, `trimmed and lower-cased; ≤ ${EMAIL_MAX} chars; must be an email address`],
  [
    Timestamp,
    `RFC 3339 with offset → UTC \`YYYY-MM-DDTHH:mm:ss.sssZ\`; from ${day(MIN_TIMESTAMP)} to ${MAX_FUTURE_SKEW_MS / (60 * 60 * 1000)} h ahead of the receiver's clock`,
  ],
  [
    ExpiryTimestamp,
    `RFC 3339 with offset → UTC \`YYYY-MM-DDTHH:mm:ss.sssZ\`; from ${day(MIN_TIMESTAMP)} to ${day(MAX_TIMESTAMP)}`,
  ],
  [CountryCode, 'ISO 3166-1 alpha-2 (assigned codes and `XK`), upper-cased'],
  [IpAddress, 'IPv4 or IPv6, lower-cased; no zone id, no CIDR'],
  [IdentityId, `1..${ID_MAX} chars, kept exactly as sent (never trimmed or re-cased: it is a key)`],
  [OpaqueId, `1..${ID_MAX} chars, kept exactly as sent`],
  [DeviceId, `trimmed, 1..${ID_MAX} chars`],
  [
    Channel,
    `\`value\` normalized for its \`type\`: phone → E.164, email → trimmed lower-case, device and sync account → trimmed 1..${ID_MAX} chars`,
  ],
  [RecoveryChannel, '`value` normalized for its `type` (phone → E.164, email → trimmed lower-case)'],
  [
    Subject,
    `\`value\` normalized for its \`type\`: identity kept exactly; phone, email, device as channels; credential and token trimmed and written \`<identityId>/<reference>\``,
  ],
]);

/** One documented field. `path` uses `.` for nested fields and `[]` for array items. */
export interface FieldRow {
  path: string;
  type: string;
  /** `required`, `optional`, `optional, default …`, each possibly followed by `, may be null`. */
  presence: string;
  rules: string[];
}

/** Options for {@link describeFields}. */
export interface FieldDocOptions {
  /** Type names for shared schemas (defaults to AVRO_NAMES, so docs and Avro say the same names). */
  names?: ReadonlyMap<ZType, string>;
  /** Notes for shared field schemas (defaults to FIELD_NOTES). */
  notes?: ReadonlyMap<ZType, string>;
  /** Records documented in a table of their own: shown by name, not expanded. */
  refs?: ReadonlySet<ZType>;
}

interface Unwrapped {
  core: ZType;
  optional: boolean;
  nullable: boolean;
  default?: { value: unknown };
  note?: string | undefined;
  /** A transform without a note: what the walk can still say about it. */
  transformed?: 'dedupe' | 'normalized';
  name?: string | undefined;
}

const code = (s: string) => `\`${s}\``;

/** `1..200`, `≤ 100`, `≥ 1`, or nothing, for a pair of inclusive bounds. */
function range(min: number | undefined, max: number | undefined, unit: string): string | undefined {
  if (min !== undefined && max !== undefined)
    return min === max ? `exactly ${min} ${unit}` : `${min}..${max} ${unit}`;
  if (max !== undefined) return `≤ ${max} ${unit}`;
  if (min !== undefined) return `≥ ${min} ${unit}`;
  return undefined;
}

/** Inclusive bounds from zod checks (`greater_than`/`less_than` for numbers, lengths otherwise). */
interface Bounds {
  min?: number | undefined;
  max?: number | undefined;
  pattern?: RegExp;
}
function bounds(def: Def, integer: boolean): Bounds {
  const out: Bounds = {};
  for (const { _zod } of def.checks ?? []) {
    const c = _zod.def;
    if (c.check === 'min_length') out.min = c.minimum;
    else if (c.check === 'max_length') out.max = c.maximum;
    else if (c.check === 'length_equals') out.min = out.max = c.length;
    else if (c.check === 'greater_than' && c.value !== undefined)
      out.min = c.inclusive || !integer ? c.value : c.value + 1;
    else if (c.check === 'less_than' && c.value !== undefined)
      out.max = c.inclusive || !integer ? c.value : c.value - 1;
    else if (c.check === 'string_format' && c.format === 'regex' && c.pattern) out.pattern = c.pattern;
  }
  return out;
}

class Walker {
  readonly #names: ReadonlyMap<ZType, string>;
  readonly #notes: ReadonlyMap<ZType, string>;
  readonly #refs: ReadonlySet<ZType>;

  constructor(opts: FieldDocOptions) {
    this.#names = opts.names ?? AVRO_NAMES;
    this.#notes = opts.notes ?? FIELD_NOTES;
    this.#refs = opts.refs ?? new Set();
  }

  unwrap(schema: ZType): Unwrapped {
    const u: Unwrapped = { core: schema, optional: false, nullable: false };
    for (;;) {
      u.note ??= this.#notes.get(u.core);
      u.name ??= this.#names.get(u.core);
      const def = defOf(u.core);
      if (def.type === 'optional' && def.innerType) u.optional = true;
      else if (def.type === 'nullable' && def.innerType) u.nullable = true;
      else if ((def.type === 'default' || def.type === 'prefault') && def.innerType) {
        const value = typeof def.defaultValue === 'function' ? def.defaultValue() : def.defaultValue;
        u.default ??= { value };
      } else if (def.type === 'readonly' && def.innerType) {
        // same shape
      } else if (def.type === 'pipe' && def.in) {
        if (u.note === undefined && def.out && defOf(def.out).type === 'transform') {
          u.transformed = defOf(def.in).type === 'array' ? 'dedupe' : 'normalized';
        }
        u.core = def.in; // what a producer sends
        continue;
      } else return u;
      u.core = def.innerType;
    }
  }

  /** Rows for every field of an object schema, depth first. */
  object(schema: ZType, prefix: string): FieldRow[] {
    const def = defOf(this.unwrap(schema).core);
    if (def.type !== 'object' || !def.shape)
      throw new TypeError(`describeFields: ${prefix || 'top'} is not an object`);
    return Object.entries(def.shape).flatMap(([name, field]) => this.field(`${prefix}${name}`, field));
  }

  field(path: string, schema: ZType): FieldRow[] {
    const u = this.unwrap(schema);
    let presence = u.default
      ? `optional, default ${code(JSON.stringify(u.default.value))}`
      : u.optional
        ? 'optional'
        : 'required';
    if (u.nullable) presence += ', may be null';
    const { type, rules, children } = this.core(u, path);
    return [{ path, type, presence, rules }, ...children];
  }

  /** Type, rules and nested rows of an unwrapped value. */
  core(u: Unwrapped, path: string): { type: string; rules: string[]; children: FieldRow[] } {
    const def = defOf(u.core);
    const rules: string[] = [];
    const noted = u.note !== undefined;
    const finish = (type: string, children: FieldRow[] = []) => {
      if (u.note) rules.push(u.note);
      if (u.transformed === 'dedupe') rules.push('duplicates dropped, first-seen order kept');
      if (u.transformed === 'normalized') rules.push('normalized');
      return { type, rules, children };
    };
    if (this.#refs.has(u.core)) return finish(code(this.#nameOf(u)));
    switch (def.type) {
      case 'string': {
        const b = bounds(def, true);
        if (!noted) {
          const length = range(b.min, b.max, 'chars');
          if (length) rules.push(length);
          if (b.pattern) rules.push(`matches ${code(b.pattern.source)}`);
          if (def.format === 'datetime') rules.push('UTC ISO 8601 timestamp (`…Z`)');
        }
        return finish('string');
      }
      case 'number': {
        const integer = (def.checks ?? []).some((c) => c._zod.def.check === 'number_format');
        const b = bounds(def, integer);
        if (!noted) {
          const r = range(b.min, b.max, '')?.trim();
          if (r) rules.push(r);
        }
        return finish(integer ? 'integer' : 'number');
      }
      case 'boolean':
        return finish('boolean');
      case 'enum': {
        const symbols = Object.values(def.entries ?? {}).map(String);
        return finish(u.name ? code(u.name) : symbols.map(code).join(' \\| '));
      }
      case 'literal':
        return finish((def.values ?? []).map((v) => code(String(v))).join(' \\| '));
      case 'array': {
        const b = bounds(def, true);
        const count = range(b.min, b.max, 'items');
        if (count) rules.push(count);
        const item = this.unwrap(def.element as ZType);
        const inner = this.core(item, `${path}[]`);
        if (item.nullable) rules.push('items may be null');
        if (inner.children.length === 0) rules.push(...inner.rules.map((r) => `each ${r}`));
        else rules.push(...inner.rules);
        const itemType = inner.type.includes(' \\| ') ? `(${inner.type})` : inner.type;
        return finish(`${itemType}[]`, inner.children);
      }
      case 'record': {
        const key = this.core(this.unwrap(def.keyType as ZType), `${path}{}`);
        const value = this.core(this.unwrap(def.valueType as ZType), `${path}{}`);
        if (key.rules.length > 0) rules.push(`keys ${key.rules.join(', ')}`);
        if (value.rules.length > 0) rules.push(`values ${value.rules.join(', ')}`);
        const plain = (t: string) => t.replaceAll('`', '');
        return finish(code(`map<${plain(key.type)}, ${plain(value.type)}>`));
      }
      case 'object': {
        if (defOf(def.catchall ?? u.core).type === 'never') rules.push('no other fields');
        return finish(u.name ? code(u.name) : 'object', this.object(u.core, `${path}.`));
      }
      case 'union': {
        // A choice of records documented in tables of their own: named, not expanded.
        const options = ((def as Def & { options?: ZType[] }).options ?? []) as ZType[];
        const names = options.map((o) => {
          const ou = this.unwrap(o);
          return this.#refs.has(ou.core) ? this.#nameOf(ou) : undefined;
        });
        if (names.length > 0 && names.every((n) => n !== undefined))
          return finish(names.map((n) => code(n as string)).join(' \\| '));
        throw new TypeError(`describeFields: ${path} is a union of records without tables of their own`);
      }
      default:
        // Failing here beats documenting a field wrongly: teach the walk the new kind instead.
        throw new TypeError(`describeFields: ${path} is a zod ${def.type}, which the walk does not describe`);
    }
  }

  #nameOf(u: Unwrapped): string {
    if (u.name) return u.name;
    throw new TypeError('describeFields: a ref needs a name');
  }
}

/**
 * The fields of an object schema (or of one variant of a discriminated union), as table rows.
 * Nested objects and arrays of objects are expanded in place unless listed in `refs`.
 */
export function describeFields(schema: ZType, opts: FieldDocOptions = {}): FieldRow[] {
  return new Walker(opts).object(schema, '');
}

/** Whether an object schema refuses fields it does not list (zod `.strict()`). */
export function refusesUnknownFields(schema: ZType): boolean {
  const core = new Walker({}).unwrap(schema).core;
  const def = defOf(core);
  return def.catchall !== undefined && defOf(def.catchall).type === 'never';
}

/** The variants of a discriminated union, by discriminator value; undefined for anything else. */
export function unionVariants(schema: ZType): Map<string, ZType> | undefined {
  const def = defOf(schema) as Def & { discriminator?: string; options?: ZType[] };
  if (def.type !== 'union' || !def.discriminator || !def.options) return undefined;
  const out = new Map<string, ZType>();
  for (const option of def.options) {
    const shape = defOf(option).shape ?? {};
    const tag = shape[def.discriminator];
    for (const value of (tag && defOf(tag).values) ?? []) out.set(String(value), option);
  }
  return out;
}

/** Renders rows as a markdown table (pipes inside cells escaped). */
export function fieldTable(rows: readonly FieldRow[]): string {
  const cell = (s: string) => s.replaceAll(/(?<!\\)\|/g, '\\|');
  const lines = ['| field | type | presence | rules |', '| --- | --- | --- | --- |'];
  for (const r of rows) {
    lines.push(`| ${code(r.path)} | ${cell(r.type)} | ${r.presence} | ${cell(r.rules.join('; ')) || '—'} |`);
  }
  return lines.join('\n');
}
