import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import avro from 'avsc';
import { assertAvroBounds } from './avro-guard.ts';

const type = avro.Type.forSchema({
  type: 'record',
  name: 'G',
  fields: [
    { name: 'e', type: { type: 'enum', name: 'E', symbols: ['a', 'b'] } },
    { name: 'u', type: ['null', 'string'] },
    { name: 'm', type: { type: 'map', values: 'long' } },
    { name: 'n', type: { type: 'array', items: 'null' } },
  ],
});
const good = type.toBuffer({ e: 'b', u: 'hi', m: { k: 1 }, n: [null, null] });

describe('assertAvroBounds', () => {
  it('accepts what avsc wrote', () => assert.doesNotThrow(() => assertAvroBounds(type, good)));
  it('refuses trailing bytes, truncation, bad enum and union indexes', () => {
    assert.throws(() => assertAvroBounds(type, Buffer.concat([good, Buffer.from([0])])), /trailing/);
    assert.throws(() => assertAvroBounds(type, good.subarray(0, good.length - 2)), /ends early/);
    assert.throws(() => assertAvroBounds(type, Buffer.from([0x04, 0x00, 0x00, 0x00])), /enum index/);
    assert.throws(() => assertAvroBounds(type, Buffer.from([0x00, 0x04, 0x00, 0x00])), /union index/);
  });
  it('caps blocks of zero-size items, which no byte count can bound', () => {
    const many = Buffer.from([0x00, 0x00, 0x00, 0xd0, 0x0f, 0x00]); // n: block of 1000 nulls
    assert.doesNotThrow(() => assertAvroBounds(type, many));
    const tooMany = Buffer.from([0x00, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00]);
    assert.throws(() => assertAvroBounds(type, tooMany), /block count/);
  });
  it('refuses varints longer than 10 bytes', () => {
    assert.throws(
      () => assertAvroBounds(type, Buffer.from([0x00, 0x00, ...Array(11).fill(0x80), 0x00])),
      /varint/,
    );
  });
});
