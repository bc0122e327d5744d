import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import avro from 'avsc';
import { z } from 'zod';
import { type AvroRecordSchema, compileAvro } from './avro.ts';
import { AVRO_DIR, expectedAvroFiles } from './avro-generate.ts';
import { loadFixtures } from './fixtures.ts';
import { AVRO_GENERATED_DOC, AVRO_NAMESPACE, TOPICS, VALUE_TOPICS } from './topics.ts';
import { decodeAvroPayload, decodeMessage, encodeRegistryAvro } from './wire.ts';

describe('committed .avsc files', () => {
  it('equal the generator output (run `node schemas/src/avro-generate.ts` after a schema change)', () => {
    const expected = expectedAvroFiles();
    const onDisk = readdirSync(AVRO_DIR).filter((f) => f.endsWith('.avsc'));
    assert.deepEqual(onDisk.sort(), [...expected.keys()].sort());
    for (const [file, content] of expected) {
      assert.equal(readFileSync(`${AVRO_DIR}${file}`, 'utf8'), content, `schemas/avro/${file} is stale`);
    }
  });

  it('exist for every value topic, parse with avsc and say they are generated', () => {
    for (const topic of VALUE_TOPICS) {
      const schema = TOPICS[topic].avro;
      assert.equal(schema.namespace, AVRO_NAMESPACE);
      assert.equal(schema.doc, AVRO_GENERATED_DOC);
      assert.ok(avro.Type.forSchema(schema as avro.Schema));
    }
  });
});

describe('Avro round trip of every valid fixture', () => {
  for (const { topic, now, valid } of loadFixtures()) {
    const writerSchema = readFileSync(`${AVRO_DIR}${topic}.avsc`, 'utf8');
    for (const c of valid) {
      it(`${topic} ${c.file}`, () => {
        const fromJson = decodeMessage(topic, c.bytes, { now }).value;
        const wire = encodeRegistryAvro(topic, JSON.parse(c.bytes.toString('utf8')), 42);
        const decoded = decodeMessage(topic, wire, { now, writerSchema });
        assert.equal(decoded.encoding, 'registry-avro');
        assert.equal(decoded.schemaId, 42);
        assert.deepEqual(decoded.value, fromJson);
        // The normalized value encodes too, and decodes to itself.
        const again = decodeMessage(topic, encodeRegistryAvro(topic, fromJson, 42), { now, writerSchema });
        assert.deepEqual(again.value, fromJson);
      });
    }
  }
});

describe('schema evolution', () => {
  it('reads a message written with an older schema that lacked an optional field', () => {
    const reader = TOPICS['identity.login.v1'].avro;
    const older = { ...reader, fields: reader.fields.filter((f) => f.name !== 'userAgent') };
    const payload = avro.Type.forSchema(older as avro.Schema).toBuffer({
      eventId: 'e1',
      occurredAt: '2025-06-01T09:00:00Z',
      source: 'okta',
      tenantId: null,
      identityId: 'user-1',
      outcome: 'success',
      authenticator: 'totp',
      ip: null,
      country: null,
      asn: null,
      deviceId: null,
    });
    const plain = decodeAvroPayload('identity.login.v1', payload, older);
    assert.deepEqual(plain, {
      eventId: 'e1',
      occurredAt: '2025-06-01T09:00:00Z',
      source: 'okta',
      identityId: 'user-1',
      outcome: 'success',
      authenticator: 'totp',
    });
  });
});

describe('compileAvro', () => {
  const compile = (schema: z.ZodType, names?: Map<z.core.$ZodType, string>) =>
    compileAvro(schema, { name: 'T', namespace: 'x.y', ...(names ? { names } : {}) });
  const fieldType = (schema: AvroRecordSchema, name: string) => schema.fields.find((f) => f.name === name);

  it('maps numbers by bounds: int32 → int, other ints → long, the rest → double', () => {
    const { schema } = compile(
      z.object({ a: z.number().int().min(0).max(100), b: z.number().int().positive(), c: z.number() }),
    );
    assert.deepEqual(
      schema.fields.map((f) => f.type),
      ['int', 'long', 'double'],
    );
  });

  it('makes optional fields null unions defaulting to null, and drops those nulls on the way back', () => {
    const codec = compile(z.object({ a: z.string().optional(), b: z.string().nullable() }));
    assert.deepEqual(fieldType(codec.schema, 'a'), { name: 'a', type: ['null', 'string'], default: null });
    assert.deepEqual(codec.toAvro({ b: null }), { a: null, b: null });
    // `a` accepts absence, not null: the null goes; `b` accepts null: it stays.
    assert.deepEqual(codec.fromAvro({ a: null, b: null }), { b: null });
  });

  it('carries zod defaults as Avro defaults', () => {
    const { schema } = compile(z.object({ tags: z.array(z.string()).default([]) }));
    assert.deepEqual(fieldType(schema, 'tags'), {
      name: 'tags',
      type: { type: 'array', items: 'string' },
      default: [],
    });
  });

  it('names shared instances once and references them afterwards; other names come from fields', () => {
    const Color = z.enum(['red', 'green']);
    const { schema } = compile(
      z.object({ first: Color, second: Color.optional(), mood: z.enum(['calm']) }),
      new Map([[Color, 'Color']]),
    );
    assert.deepEqual(fieldType(schema, 'first')?.type, {
      type: 'enum',
      name: 'Color',
      symbols: ['red', 'green'],
    });
    assert.deepEqual(fieldType(schema, 'second')?.type, ['null', 'Color']);
    assert.deepEqual(fieldType(schema, 'mood')?.type, { type: 'enum', name: 'Mood', symbols: ['calm'] });
  });

  it('qualifies a derived name with its parent when it is already taken', () => {
    const { schema } = compile(
      z.object({ inner: z.object({ x: z.string() }), box: z.object({ inner: z.object({ y: z.string() }) }) }),
    );
    assert.doesNotThrow(() => avro.Type.forSchema(schema as avro.Schema));
    assert.match(JSON.stringify(schema), /"name":"BoxInner"/);
  });

  it('maps string-keyed records to Avro maps', () => {
    const { schema } = compile(z.object({ m: z.record(z.string(), z.number().int().min(0).max(9)) }));
    assert.deepEqual(fieldType(schema, 'm')?.type, { type: 'map', values: 'int' });
  });

  it('falls back to a documented JSON string for what Avro cannot say', () => {
    const codec = compile(z.object({ blob: z.unknown() }));
    const field = fieldType(codec.schema, 'blob');
    assert.equal(field?.type, 'string');
    assert.match(field?.doc ?? '', /JSON-encoded/);
    assert.deepEqual(codec.toAvro({ blob: { a: [1] } }), { blob: '{"a":[1]}' });
    assert.deepEqual(codec.fromAvro({ blob: '{"a":[1]}' }), { blob: { a: [1] } });
  });

  it('flattens a discriminated union into one record with a discriminator enum', () => {
    const U = z.discriminatedUnion('op', [
      z.object({ op: z.literal('on'), id: z.string(), level: z.number().int().min(0).max(3) }),
      z.object({ op: z.literal('off'), id: z.string(), note: z.string().optional() }),
    ]);
    const codec = compile(U);
    assert.deepEqual(codec.schema.fields, [
      { name: 'op', type: { type: 'enum', name: 'Op', symbols: ['on', 'off'] } },
      { name: 'id', type: 'string' },
      { name: 'level', type: ['null', 'int'], default: null },
      { name: 'note', type: ['null', 'string'], default: null },
    ]);
    assert.deepEqual(codec.fromAvro({ op: 'off', id: 'a', level: null, note: null }), { op: 'off', id: 'a' });
    assert.doesNotThrow(() => avro.Type.forSchema(codec.schema as avro.Schema));
  });

  it('refuses a top level that is not record-shaped', () => {
    assert.throws(() => compile(z.string()), TypeError);
  });
});
