import type { z } from 'zod';
import {
  type AvroRecordSchema,
  emitType,
  type FieldPlan,
  fromAvro,
  type Plan,
  type RecordPlan,
  toAvro,
} from './avro-plan.ts';

export type { AvroRecordSchema, AvroType } from './avro-plan.ts';

/**
 * zod v4 → Avro. One walk over the zod schema's INPUT side (what producers send) yields a plan; the
 * Avro JSON and the value converters are both derived from that plan, so they cannot disagree.
 *
 * Mapping:
 * - string (any format, any transform behind it) → `string`; timestamps travel as RFC 3339 strings.
 * - int with both bounds inside int32 → `int`; other ints → `long`; other numbers → `double`.
 * - boolean → `boolean`; enum → Avro `enum` (named); array → `array`; string-keyed record → `map`.
 * - object → named `record`; optional or nullable → `["null", T]` with default `null`;
 *   `.default(v)` → field default `v`.
 * - a discriminated union of objects → ONE flattened record: the discriminator becomes an enum of
 *   all variant values, fields required in every variant stay required, every other field becomes
 *   nullable. zod, not Avro, enforces which fields each variant needs.
 * - anything else (unknown, lazy, unions of unlike types) → `string` holding JSON, with a field doc.
 *
 * Decoded Avro has `null` where JSON has an absent key; {@link AvroCodec.fromAvro} drops those nulls
 * again (unless zod accepts `null` there), so zod sees the same input either way.
 */

type ZType = z.core.$ZodType;

/** Loose view of zod v4 internal definitions: only what the walk reads. */
interface Def {
  type: string;
  innerType?: ZType;
  in?: ZType;
  element?: ZType;
  shape?: Record<string, ZType>;
  options?: ZType[];
  discriminator?: string;
  entries?: Record<string, string | number>;
  values?: unknown[];
  keyType?: ZType;
  valueType?: ZType;
  defaultValue?: unknown;
}
const defOf = (schema: ZType): Def => schema._zod.def as unknown as Def;

/** Options for {@link compileAvro}. */
export interface AvroOptions {
  /** Name of the top record. */
  name: string;
  namespace: string;
  /** Doc of the top record. */
  doc?: string;
  /** Names for shared zod instances (vocabulary enums, shared records); others are derived from field names. */
  names?: ReadonlyMap<ZType, string>;
}

/** An Avro schema plus converters between zod input values and Avro values, derived from one plan. */
export interface AvroCodec {
  schema: AvroRecordSchema;
  /** Plain zod-input value → value avsc can encode (absent → null or default; JSON fallbacks stringified). */
  toAvro(value: unknown): unknown;
  /** avsc-decoded value → plain zod-input value (nulls of optional fields dropped; JSON fallbacks parsed). */
  fromAvro(value: unknown): unknown;
}

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const pascal = (s: string) =>
  s.replace(/(^|[^A-Za-z0-9]+)([A-Za-z0-9])/g, (_m, _sep, c: string) => c.toUpperCase());

/** Unwrapped view of a field: the core schema plus what the wrappers said about it. */
interface Unwrapped {
  core: ZType;
  optional: boolean;
  nullable: boolean;
  default?: { value: unknown };
  named?: string;
}

class Planner {
  readonly #names: ReadonlyMap<ZType, string>;
  readonly #byInstance = new Map<ZType, Plan>();
  readonly #taken = new Map<string, Plan>();

  constructor(names: ReadonlyMap<ZType, string>) {
    this.#names = names;
  }

  unwrap(schema: ZType): Unwrapped {
    const u: Unwrapped = { core: schema, optional: false, nullable: false };
    for (;;) {
      const named = this.#names.get(u.core);
      if (u.named === undefined && named !== undefined) u.named = named;
      const def = defOf(u.core);
      if (def.type === 'optional' && def.innerType) u.optional = true;
      else if (def.type === 'nullable' && def.innerType) u.nullable = true;
      else if ((def.type === 'default' || def.type === 'prefault') && def.innerType) {
        const value = typeof def.defaultValue === 'function' ? def.defaultValue() : def.defaultValue;
        u.default ??= { value };
      } else if (def.type === 'readonly' && def.innerType) {
        // same wire shape
      } else if (def.type === 'pipe' && def.in) {
        u.core = def.in; // the input side is what travels
        continue;
      } else if (def.type === 'union' && !def.discriminator && def.options?.length === 2) {
        const nonNull = def.options.filter((o) => defOf(o).type !== 'null');
        if (nonNull.length !== 1 || !nonNull[0]) return u;
        u.nullable = true;
        u.core = nonNull[0];
        continue;
      } else return u;
      u.core = def.innerType;
    }
  }

  /** Reserves `preferred` (or a parent-qualified fallback) for `plan`; returns the name to use. */
  #reserve(preferred: string, parent: string, plan: Plan): string {
    let name = this.#taken.has(preferred) ? `${parent}${preferred}` : preferred;
    for (let i = 2; this.#taken.has(name); i++) name = `${parent}${preferred}${i}`;
    this.#taken.set(name, plan);
    return name;
  }

  /** Plans the core of a value; `field` and `parent` only feed derived names. */
  plan(u: Unwrapped, field: string, parent: string): Plan {
    const cached = this.#byInstance.get(u.core);
    if (cached) return cached;
    const def = defOf(u.core);
    switch (def.type) {
      case 'string':
        return { kind: 'string' };
      case 'boolean':
        return { kind: 'boolean' };
      case 'number': {
        const n = u.core as unknown as {
          isInt?: boolean;
          minValue?: number | null;
          maxValue?: number | null;
        };
        if (!n.isInt) return { kind: 'double' };
        const fitsInt32 = (n.minValue ?? -Infinity) >= INT32_MIN && (n.maxValue ?? Infinity) <= INT32_MAX;
        return { kind: fitsInt32 ? 'int' : 'long' };
      }
      case 'enum': {
        const symbols = Object.values(def.entries ?? {}).map(String);
        if (!symbols.every((s) => AVRO_NAME.test(s))) return { kind: 'string' };
        const plan = { kind: 'enum' as const, name: '', symbols };
        plan.name = this.#reserve(u.named ?? pascal(field), parent, plan);
        this.#byInstance.set(u.core, plan);
        return plan;
      }
      case 'literal': {
        const [value, ...rest] = def.values ?? [];
        if (rest.length === 0 && typeof value === 'string') return { kind: 'string' };
        if (rest.length === 0 && typeof value === 'boolean') return { kind: 'boolean' };
        return { kind: 'json', reason: 'literal' };
      }
      case 'array':
        return { kind: 'array', items: this.item(def.element as ZType, field, parent) };
      case 'record': {
        const keyType = defOf(def.keyType as ZType).type;
        if (keyType !== 'string' && keyType !== 'enum')
          return { kind: 'json', reason: 'record with non-string keys' };
        return { kind: 'map', values: this.item(def.valueType as ZType, field, parent) };
      }
      case 'object':
        return this.#object(u, field, parent);
      case 'union':
        if (def.discriminator) return this.#flattened(u, def.discriminator, field, parent);
        return this.#union(def.options ?? [], field, parent);
      default:
        return { kind: 'json', reason: def.type };
    }
  }

  /** Plans an array item or map value: optional/nullable there become an Avro null branch. */
  item(schema: ZType, field: string, parent: string): Plan {
    const u = this.unwrap(schema);
    const plan = this.plan(u, field, parent);
    return u.optional || u.nullable ? { kind: 'nullable', inner: plan } : plan;
  }

  #field(name: string, schema: ZType, parent: string): FieldPlan {
    const u = this.unwrap(schema);
    const core = this.plan(u, name, parent);
    const field: FieldPlan = {
      name,
      plan: u.optional || u.nullable ? { kind: 'nullable', inner: core } : core,
      acceptsNull: u.nullable,
    };
    if (u.default) field.default = u.default;
    return field;
  }

  #object(u: Unwrapped, field: string, parent: string): RecordPlan {
    const plan: RecordPlan = { kind: 'record', name: '', fields: [] };
    plan.name = this.#reserve(u.named ?? pascal(field), parent, plan);
    this.#byInstance.set(u.core, plan);
    for (const [name, schema] of Object.entries(defOf(u.core).shape ?? {})) {
      plan.fields.push(this.#field(name, schema, plan.name));
    }
    return plan;
  }

  #flattened(u: Unwrapped, discriminator: string, field: string, parent: string): Plan {
    const variants = (defOf(u.core).options ?? []).map((o) => this.unwrap(o).core);
    const shapes = variants.map((v) => defOf(v).shape);
    if (shapes.some((s) => s === undefined)) return { kind: 'json', reason: 'union of non-objects' };
    const plan: RecordPlan = { kind: 'record', name: '', fields: [], discriminator, variants: new Map() };
    plan.name = this.#reserve(u.named ?? pascal(field), parent, plan);
    this.#byInstance.set(u.core, plan);
    const order = [...new Set(shapes.flatMap((s) => Object.keys(s ?? {})))];
    const symbols: string[] = [];
    for (const shape of shapes as Record<string, ZType>[]) {
      const values = defOf(shape[discriminator] as ZType).values ?? [];
      const nullable = new Map<string, boolean>();
      for (const [name, schema] of Object.entries(shape)) nullable.set(name, this.unwrap(schema).nullable);
      for (const value of values) {
        symbols.push(String(value));
        plan.variants?.set(String(value), nullable);
      }
    }
    for (const name of order) {
      if (name === discriminator) {
        const enumPlan = this.#enumFor(symbols, name, plan.name);
        plan.fields.push({ name, plan: enumPlan, acceptsNull: false });
        continue;
      }
      const present = shapes.map((s) => s?.[name]).filter((s): s is ZType => s !== undefined);
      const fields = present.map((s) => this.#field(name, s, plan.name));
      const cores = fields.map((f) => (f.plan.kind === 'nullable' ? f.plan.inner : f.plan));
      const signature = (p: Plan) => JSON.stringify(emitType(p, new Set()));
      const same = cores.every((c) => signature(c) === signature(cores[0] as Plan));
      const core = same ? (cores[0] as Plan) : ({ kind: 'json', reason: 'differs between variants' } as Plan);
      const required =
        present.length === shapes.length && fields.every((f) => f.plan.kind !== 'nullable' && !f.default);
      plan.fields.push({
        name,
        plan: required ? core : { kind: 'nullable', inner: core },
        acceptsNull: false,
      });
    }
    return plan;
  }

  /** The enum for a flattened discriminator: a named vocabulary enum with the same symbols, if any. */
  #enumFor(symbols: string[], field: string, parent: string): Plan {
    if (!symbols.every((s) => AVRO_NAME.test(s))) return { kind: 'string' };
    for (const [schema, name] of this.#names) {
      const def = defOf(schema);
      const known = def.type === 'enum' ? Object.values(def.entries ?? {}).map(String) : [];
      if (known.length === symbols.length && known.every((s) => symbols.includes(s))) {
        return this.plan({ core: schema, optional: false, nullable: false, named: name }, field, parent);
      }
    }
    const plan = { kind: 'enum' as const, name: '', symbols };
    plan.name = this.#reserve(pascal(field), parent, plan);
    return plan;
  }

  #union(options: ZType[], field: string, parent: string): Plan {
    const plans = options.map((o) => this.plan(this.unwrap(o), field, parent));
    const kinds = new Set(plans.map((p) => p.kind));
    const [kind] = kinds;
    if (kinds.size === 1 && (kind === 'string' || kind === 'boolean' || kind === 'double')) {
      return plans[0] as Plan;
    }
    return { kind: 'json', reason: 'union of unlike types' };
  }
}

/**
 * Compiles a zod object (or discriminated union of objects) into an Avro record schema and the value
 * converters that go with it. Throws if the top level is not record-shaped.
 */
export function compileAvro(schema: ZType, options: AvroOptions): AvroCodec {
  const planner = new Planner(options.names ?? new Map());
  const u = planner.unwrap(schema);
  const plan = planner.plan({ ...u, named: options.name }, options.name, '');
  if (plan.kind !== 'record') throw new TypeError(`compileAvro: ${options.name} is not record-shaped`);
  const emitted = emitType(plan, new Set()) as AvroRecordSchema;
  // `doc` first: in a committed .avsc it is then the first thing a reader sees ("generated, do not
  // edit"), the nearest JSON gets to a header comment. Key order means nothing to Avro.
  const schemaJson: AvroRecordSchema = {
    ...(options.doc === undefined ? {} : { doc: options.doc }),
    type: 'record',
    name: emitted.name,
    namespace: options.namespace,
    fields: emitted.fields,
  };
  return {
    schema: schemaJson,
    toAvro: (value) => toAvro(plan, value),
    fromAvro: (value) => fromAvro(plan, value),
  };
}
