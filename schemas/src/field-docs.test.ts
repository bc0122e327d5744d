import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { Decision, TierRequirement } from './decision.ts';
import {
  describeFields,
  FIELD_NOTES,
  fieldTable,
  refusesUnknownFields,
  unionVariants,
} from './field-docs.ts';
import { PhoneNumber } from './fields.ts';
import { INPUT_TOPICS, TOPICS } from './topics.ts';

const row = (schema: z.ZodType, path: string, opts = {}) => {
  const found = describeFields(schema, opts).find((r) => r.path === path);
  assert.ok(found, `no row for ${path}`);
  return found;
};

describe('describeFields', () => {
  it('reads presence, bounds and formats from the zod checks', () => {
    const s = z.object({
      id: z.string().min(1).max(200),
      n: z.number().int().positive().optional(),
      at: z.iso.datetime().nullable(),
      tags: z.array(z.string().max(5)).max(3).default([]),
      code: z.string().regex(/^[a-z]+$/),
    });
    assert.deepEqual(row(s, 'id'), {
      path: 'id',
      type: 'string',
      presence: 'required',
      rules: ['1..200 chars'],
    });
    assert.deepEqual(row(s, 'n'), { path: 'n', type: 'integer', presence: 'optional', rules: ['≥ 1'] });
    assert.equal(row(s, 'at').presence, 'required, may be null');
    assert.match(row(s, 'at').rules.join(), /UTC ISO 8601/);
    assert.deepEqual(row(s, 'tags'), {
      path: 'tags',
      type: 'string[]',
      presence: 'optional, default `[]`',
      rules: ['≤ 3 items', 'each ≤ 5 chars'],
    });
    assert.deepEqual(row(s, 'code').rules, ['matches `^[a-z]+$`']);
  });

  it('describes a transformed field by its note, and by the input it accepts', () => {
    const s = z.object({
      phone: PhoneNumber,
      set: z.array(z.enum(['a', 'b'])).transform((v) => [...new Set(v)]),
    });
    assert.deepEqual(row(s, 'phone').rules, [FIELD_NOTES.get(PhoneNumber)]);
    assert.deepEqual(row(s, 'set'), {
      path: 'set',
      type: '(`a` \\| `b`)[]',
      presence: 'required',
      rules: ['duplicates dropped, first-seen order kept'],
    });
  });

  it('expands nested objects and arrays of objects, but not refs', () => {
    const paths = describeFields(Decision, { refs: new Set([TierRequirement]) }).map((r) => r.path);
    assert.ok(paths.includes('tiers.critical'));
    assert.ok(!paths.some((p) => p.startsWith('tiers.critical.')));
    assert.equal(row(Decision, 'tiers.low', { refs: new Set([TierRequirement]) }).type, '`TierRequirement`');
    assert.ok(describeFields(TierRequirement).some((r) => r.path === 'excludedAuthenticators[].reasons'));
  });

  it('lists every field of every input topic, in order', () => {
    for (const topic of INPUT_TOPICS) {
      const schema = TOPICS[topic].value;
      for (const variant of unionVariants(schema)?.values() ?? [schema]) {
        const top = describeFields(variant)
          .map((r) => r.path)
          .filter((p) => !/[.[]/.test(p));
        const shape = (variant as unknown as { shape: Record<string, unknown> }).shape;
        assert.deepEqual(top, Object.keys(shape), topic);
        assert.ok(refusesUnknownFields(variant), `${topic} is strict`);
      }
    }
  });

  it('refuses a zod kind it cannot describe rather than guessing', () => {
    assert.throws(() => describeFields(z.object({ x: z.unknown() })), /x is a zod unknown/);
  });
});

describe('fieldTable', () => {
  it('renders one row per field and escapes pipes', () => {
    const table = fieldTable([{ path: 'op', type: '`a` | `b`', presence: 'required', rules: [] }]);
    assert.equal(
      table,
      '| field | type | presence | rules |\n| --- | --- | --- | --- |\n| `op` | `a` \\| `b` | required | — |',
    );
  });
});
