import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContractError, type ContractErrorCode, isContractError } from './contract-error.ts';
import { TOPICS } from './topics.ts';
import {
  assertKeyMatches,
  decodeMessage,
  detectEncoding,
  encodeRegistryAvro,
  keyFor,
  keyMatches,
  MAX_MESSAGE_BYTES,
  parseJsonValue,
  readSchemaId,
  validateEvent,
} from './wire.ts';

const now = new Date('2025-06-01T12:00:00Z');
const login = {
  eventId: 'e-1',
  occurredAt: '2025-06-01T10:00:00+02:00',
  source: 'okta',
  identityId: 'user-1',
  outcome: 'failure',
  authenticator: 'push',
};
const simSwap = {
  eventId: 'e-2',
  occurredAt: '2025-06-01T10:00:00Z',
  source: 'carrier',
  phoneNumber: '+49 151 1234 5678',
  swappedAt: '2025-06-01T09:00:00Z',
  changeType: 'port_out',
};
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function throwsCode(fn: () => unknown, code: ContractErrorCode): ContractError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ContractError, `expected ContractError(${code}), got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

describe('detectEncoding', () => {
  it('tells registry Avro, JSON and everything else apart', () => {
    assert.equal(detectEncoding(Buffer.from([0, 0, 0, 0, 7, 2])), 'registry-avro');
    assert.equal(detectEncoding(Buffer.from([0, 0, 0, 0, 7])), 'registry-avro');
    assert.equal(detectEncoding(Buffer.from([0, 0, 0, 7])), 'unknown');
    assert.equal(detectEncoding(Buffer.from('{}')), 'json');
    assert.equal(detectEncoding(Buffer.from(' \r\n\t{"a":1}')), 'json');
    assert.equal(detectEncoding(Buffer.from('\uFEFF{}')), 'unknown');
    assert.equal(detectEncoding(Buffer.from('[1]')), 'unknown');
    assert.equal(detectEncoding(Buffer.from('   ')), 'unknown');
    assert.equal(detectEncoding(Buffer.alloc(0)), 'unknown');
  });
});

describe('readSchemaId', () => {
  it('reads the 4-byte big-endian id after the magic byte', () => {
    assert.equal(readSchemaId(Buffer.from([0, 0, 0, 1, 2, 9])), 258);
    assert.equal(readSchemaId(new Uint8Array([0, 0xff, 0xff, 0xff, 0xff])), 4294967295);
    assert.equal(readSchemaId(new Uint8Array([9, 0, 0, 0, 0, 0, 1, 2, 3]).subarray(4)), 66051);
  });
  it('rejects anything else', () => {
    throwsCode(() => readSchemaId(json({})), 'unknown_encoding');
    throwsCode(() => readSchemaId(Buffer.from([0, 0, 1])), 'unknown_encoding');
  });
});

describe('parseJsonValue', () => {
  it('parses an object', () => assert.deepEqual(parseJsonValue(Buffer.from(' {"a":[1]} ')), { a: [1] }));
  it('rejects empty, oversize, malformed, non-UTF-8 and non-object values', () => {
    throwsCode(() => parseJsonValue(Buffer.alloc(0)), 'empty_message');
    throwsCode(() => parseJsonValue(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20)), 'message_too_large');
    throwsCode(() => parseJsonValue(Buffer.from('{"a":')), 'invalid_json');
    throwsCode(() => parseJsonValue(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), 'invalid_utf8');
    throwsCode(() => parseJsonValue(Buffer.from('{"a":"\\udc00x"}')), 'invalid_utf8');
    throwsCode(() => parseJsonValue(Buffer.from('[{}]')), 'invalid_json');
    throwsCode(() => parseJsonValue(Buffer.from('null')), 'invalid_json');
    throwsCode(() => parseJsonValue(Buffer.from('\uFEFF{}')), 'invalid_json');
  });
  it('keeps a __proto__ key as data, which strict schemas then refuse', () => {
    const parsed = parseJsonValue(Buffer.from('{"__proto__":{"polluted":true}}'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const error = throwsCode(
      () => validateEvent('identity.login.v1', { ...login, ...parsed }, { now }),
      'validation_failed',
    );
    assert.ok(
      error.issues.some((i) => i.startsWith('__proto__:')),
      error.issues.join(),
    );
  });
});

describe('validateEvent', () => {
  it('returns the normalized, typed event', () => {
    const event = validateEvent('identity.login.v1', login, { now });
    assert.equal(event.occurredAt, '2025-06-01T08:00:00.000Z');
    assert.equal(event.outcome, 'failure');
  });
  it('flattens every issue to `path: message`', () => {
    const error = throwsCode(
      () =>
        validateEvent('identity.login.v1', { ...login, outcome: 'maybe', extra: 1, eventId: '' }, { now }),
      'validation_failed',
    );
    assert.deepEqual(error.issues.map((i) => i.split(':')[0]).sort(), ['eventId', 'extra', 'outcome']);
    assert.ok(error.cause);
  });
  it('uses <root> for the value itself', () => {
    const error = throwsCode(() => validateEvent('identity.device.v1', 'nope'), 'validation_failed');
    assert.match(error.issues[0] ?? '', /^<root>: /);
  });
  it('checks the future bound against the injected now', () => {
    const ahead = { ...login, occurredAt: '2025-06-03T00:00:00Z' };
    throwsCode(() => validateEvent('identity.login.v1', ahead, { now }), 'validation_failed');
    assert.ok(validateEvent('identity.login.v1', ahead, { now: new Date('2025-06-02T12:00:00Z') }));
  });
  it('treats a topic outside the catalog as a programming error', () => {
    assert.throws(() => validateEvent('assurance.dlq.v1' as never, {}), RangeError);
    assert.throws(() => validateEvent('nope.v1' as never, {}), RangeError);
  });
});

describe('decodeMessage', () => {
  const writerSchema = TOPICS['identity.login.v1'].avro;
  it('decodes JSON and registry Avro to the same event', () => {
    const a = decodeMessage('identity.login.v1', json(login), { now });
    const b = decodeMessage('identity.login.v1', encodeRegistryAvro('identity.login.v1', login, 7), {
      now,
      writerSchema,
    });
    assert.deepEqual(b, { ...a, encoding: 'registry-avro', schemaId: 7 });
  });
  it('asks for the writer schema of a registry message', () => {
    throwsCode(
      () => decodeMessage('identity.login.v1', encodeRegistryAvro('identity.login.v1', login, 7)),
      'unknown_schema_id',
    );
  });
  it('rejects broken Avro: garbage, truncation, trailing bytes, an unusable writer schema', () => {
    const good = encodeRegistryAvro('identity.login.v1', login, 7);
    const opts = { now, writerSchema };
    throwsCode(
      () => decodeMessage('identity.login.v1', Buffer.from([0, 0, 0, 0, 7, 0xff, 0xff]), opts),
      'invalid_avro',
    );
    throwsCode(
      () => decodeMessage('identity.login.v1', good.subarray(0, good.length - 3), opts),
      'invalid_avro',
    );
    throwsCode(
      () => decodeMessage('identity.login.v1', Buffer.concat([good, Buffer.from([1])]), opts),
      'invalid_avro',
    );
    throwsCode(
      () => decodeMessage('identity.login.v1', good, { now, writerSchema: '{"type":"record"' }),
      'invalid_avro',
    );
    throwsCode(
      () =>
        decodeMessage('identity.login.v1', good, { now, writerSchema: TOPICS['identity.device.v1'].avro }),
      'invalid_avro',
    );
  });
  it('rejects oversize, empty and unknown encodings before parsing', () => {
    throwsCode(() => decodeMessage('identity.login.v1', json(login), { maxBytes: 10 }), 'message_too_large');
    throwsCode(() => decodeMessage('identity.login.v1', Buffer.alloc(0)), 'empty_message');
    throwsCode(() => decodeMessage('identity.login.v1', Buffer.from('login!')), 'unknown_encoding');
  });
  it('refuses to encode a value that does not fit the Avro schema', () => {
    throwsCode(
      () => encodeRegistryAvro('identity.login.v1', { ...login, outcome: 'maybe' }, 1),
      'invalid_avro',
    );
  });
});

describe('keys', () => {
  it('derives the key from the normalized value', () => {
    assert.equal(keyFor('identity.login.v1', validateEvent('identity.login.v1', login, { now })), 'user-1');
    assert.equal(
      keyFor('identity.sim-swap.v1', validateEvent('identity.sim-swap.v1', simSwap, { now })),
      '+4915112345678',
    );
  });
  it('normalizes the received key before comparing', () => {
    const event = validateEvent('identity.sim-swap.v1', simSwap, { now });
    assert.ok(keyMatches('identity.sim-swap.v1', '0049 151 12345678', event));
    assert.ok(keyMatches('identity.sim-swap.v1', Buffer.from('+4915112345678'), event));
    assert.ok(!keyMatches('identity.sim-swap.v1', '+4915112345679', event));
    assert.ok(!keyMatches('identity.sim-swap.v1', '015112345678', event));
  });
  it('compares signal keys as <type>:<normalized value>', () => {
    const signal = validateEvent(
      'identity.compromise-signal.v1',
      {
        eventId: 'e-3',
        occurredAt: '2025-06-01T10:00:00Z',
        source: 'soc',
        signalId: 's-1',
        op: 'clear',
        subject: { type: 'email', value: 'Alice@Example.com' },
        raisedBy: 'soc:jane',
      },
      { now },
    );
    assert.equal(keyFor('identity.compromise-signal.v1', signal), 'email:alice@example.com');
    assert.ok(keyMatches('identity.compromise-signal.v1', 'email: ALICE@example.com', signal));
    assert.ok(!keyMatches('identity.compromise-signal.v1', 'alice@example.com', signal));
    assert.ok(!keyMatches('identity.compromise-signal.v1', 'mail:alice@example.com', signal));
  });
  it('throws key_mismatch without echoing the key', () => {
    const event = validateEvent('identity.login.v1', login, { now });
    assert.doesNotThrow(() => assertKeyMatches('identity.login.v1', 'user-1', event));
    const wrong = throwsCode(() => assertKeyMatches('identity.login.v1', 'user-2', event), 'key_mismatch');
    assert.ok(!wrong.message.includes('user-2'));
    assert.match(
      throwsCode(() => assertKeyMatches('identity.login.v1', null, event), 'key_mismatch').message,
      /no key/,
    );
  });
});

describe('ContractError', () => {
  it('bounds its message and is recognizable', () => {
    const error = new ContractError('validation_failed', 'x'.repeat(2000), { issues: ['a: b'] });
    assert.equal(error.message.length, 500);
    assert.ok(isContractError(error));
    assert.ok(!isContractError(new Error('x')));
    assert.deepEqual(error.issues, ['a: b']);
    assert.equal(error.name, 'ContractError');
  });
});

describe('errors never carry the input', () => {
  it('a malformed JSON or Avro value with a phone number in it: not in the message, the cause or a printout', async () => {
    const { inspect } = await import('node:util');
    const sentinel = '+4915199999999';
    const writerSchema = TOPICS['identity.sim-swap.v1'].avro;
    const attempts: Array<() => unknown> = [
      () => parseJsonValue(Buffer.from(`{"phoneNumber": "${sentinel}", "oops" `)),
      // V8 quotes the text around the error: here, the number itself.
      () => parseJsonValue(Buffer.from(`{"p": ${sentinel}}`)),
      () => parseJsonValue(Buffer.from(`${sentinel} x`)),
      () =>
        decodeMessage(
          'identity.sim-swap.v1',
          Buffer.concat([
            encodeRegistryAvro('identity.login.v1', login, 7).subarray(0, 5),
            Buffer.from(sentinel),
          ]),
          { now, writerSchema },
        ),
    ];
    for (const attempt of attempts) {
      let caught: unknown;
      try {
        attempt();
      } catch (err) {
        caught = err;
      }
      assert.ok(isContractError(caught), `a contract error: ${String(caught)}`);
      const printed = [
        String(caught),
        JSON.stringify(caught),
        inspect(caught, { depth: 5 }),
        caught.stack ?? '',
      ];
      // Any seven digits of it would be a leak (a quoted snippet is cut short).
      for (const text of printed) assert.ok(!text.includes(sentinel.slice(1, 8)), text.slice(0, 300));
    }
  });
});
