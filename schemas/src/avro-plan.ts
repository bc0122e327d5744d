/**
 * The plan behind `compileAvro` (avro.ts), and the two things derived from it: the Avro JSON and the
 * value converters. Kept apart from the planner so each file reads in one sitting.
 */

/** An Avro type as JSON (the subset this generator emits). */
export type AvroType =
  | 'null'
  | 'string'
  | 'int'
  | 'long'
  | 'double'
  | 'boolean'
  | string
  | AvroType[]
  | { type: 'array'; items: AvroType }
  | { type: 'map'; values: AvroType }
  | { type: 'enum'; name: string; symbols: string[] }
  | AvroRecordSchema;

/** An Avro record schema as JSON. */
export interface AvroRecordSchema {
  type: 'record';
  name: string;
  namespace?: string;
  doc?: string;
  fields: { name: string; type: AvroType; default?: unknown; doc?: string }[];
}

/** What one zod node becomes on the wire (internal to the generator). */
export type Plan =
  | { kind: 'string' | 'int' | 'long' | 'double' | 'boolean' }
  | { kind: 'enum'; name: string; symbols: string[] }
  | { kind: 'array'; items: Plan }
  | { kind: 'map'; values: Plan }
  | { kind: 'nullable'; inner: Plan }
  | { kind: 'json'; reason: string }
  | RecordPlan;

/** A named Avro record; a flattened discriminated union carries its variants. */
export interface RecordPlan {
  kind: 'record';
  name: string;
  fields: FieldPlan[];
  /** For flattened unions: the discriminator and, per variant value, the fields that accept null. */
  discriminator?: string;
  variants?: Map<string, Map<string, boolean>>;
}

/** One record field. */
export interface FieldPlan {
  name: string;
  plan: Plan;
  /** zod accepts `null` here, so a decoded `null` is kept rather than turned into an absent key. */
  acceptsNull: boolean;
  default?: { value: unknown };
}

/** Emits the Avro JSON of a plan; a named type is defined at its first use and referenced after. */
export function emitType(plan: Plan, emitted: Set<string>): AvroType {
  switch (plan.kind) {
    case 'string':
    case 'int':
    case 'long':
    case 'double':
    case 'boolean':
      return plan.kind;
    case 'json':
      return 'string';
    case 'nullable':
      return ['null', emitType(plan.inner, emitted)];
    case 'array':
      return { type: 'array', items: emitType(plan.items, emitted) };
    case 'map':
      return { type: 'map', values: emitType(plan.values, emitted) };
    case 'enum':
      if (emitted.has(plan.name)) return plan.name;
      emitted.add(plan.name);
      return { type: 'enum', name: plan.name, symbols: [...plan.symbols] };
    case 'record': {
      if (emitted.has(plan.name)) return plan.name;
      emitted.add(plan.name);
      return { type: 'record', name: plan.name, fields: plan.fields.map((f) => emitField(f, emitted)) };
    }
  }
}

function emitField(field: FieldPlan, emitted: Set<string>): AvroRecordSchema['fields'][number] {
  const out: AvroRecordSchema['fields'][number] = { name: field.name, type: emitType(field.plan, emitted) };
  if (field.default) {
    out.default = toAvro(field.plan, field.default.value);
    // Avro checks a union default against the first branch, so a non-null default goes first.
    if (out.default !== null && Array.isArray(out.type)) out.type = [...out.type].reverse();
  } else if (field.plan.kind === 'nullable') out.default = null;
  const json = field.plan.kind === 'nullable' ? field.plan.inner : field.plan;
  if (json.kind === 'json') out.doc = `JSON-encoded (${json.reason}); parse before validating.`;
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Plain zod-input value → value avsc can encode. */
export function toAvro(plan: Plan, value: unknown): unknown {
  switch (plan.kind) {
    case 'nullable':
      return value === undefined || value === null ? null : toAvro(plan.inner, value);
    case 'json':
      return JSON.stringify(value);
    case 'array':
      return Array.isArray(value) ? value.map((v) => toAvro(plan.items, v)) : value;
    case 'map':
      return isObject(value)
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toAvro(plan.values, v)]))
        : value;
    case 'record': {
      if (!isObject(value)) return value;
      const out: Record<string, unknown> = {};
      for (const f of plan.fields) {
        const v = value[f.name] === undefined && f.default ? f.default.value : value[f.name];
        out[f.name] = toAvro(f.plan, v);
      }
      return out;
    }
    default:
      return value;
  }
}

/** avsc-decoded value → plain zod-input value. */
export function fromAvro(plan: Plan, value: unknown): unknown {
  switch (plan.kind) {
    case 'nullable':
      return value === null ? null : fromAvro(plan.inner, value);
    case 'json':
      return typeof value === 'string' ? JSON.parse(value) : value;
    case 'array':
      return Array.isArray(value) ? value.map((v) => fromAvro(plan.items, v)) : value;
    case 'map':
      return isObject(value)
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromAvro(plan.values, v)]))
        : value;
    case 'record': {
      if (!isObject(value)) return value;
      const variant = plan.discriminator ? plan.variants?.get(String(value[plan.discriminator])) : undefined;
      const out: Record<string, unknown> = {};
      for (const f of plan.fields) {
        const v = value[f.name];
        const acceptsNull = variant ? variant.get(f.name) === true : f.acceptsNull;
        if (v === undefined || (v === null && !acceptsNull)) continue;
        out[f.name] = fromAvro(f.plan, v);
      }
      return out;
    }
    default:
      return value;
  }
}
