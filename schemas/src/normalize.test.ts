import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { withNow } from './clock.ts';
import { EmailAddress, Timestamp } from './fields.ts';
import {
  type Normalized,
  normalizeEmail,
  normalizePhone,
  normalizeSubjectValue,
  normalizeTimestamp,
} from './normalize.ts';

const value = (r: Normalized) => (r.ok ? r.value : `ERR ${r.message}`);
const bounds = { min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z') };

describe('normalizePhone', () => {
  const accepted: [string, string][] = [
    ['+4915112345678', '+4915112345678'],
    ['+49 151 1234 5678', '+4915112345678'],
    ['0049 (151) 1234-5678', '+4915112345678'],
    ['+1 (415) 555-0134', '+14155550134'],
    ['+1.415.555.0134', '+14155550134'],
    ['  +44 20 7946 0958  ', '+442079460958'],
    ['+12345678', '+12345678'],
    ['+123456789012345', '+123456789012345'],
  ];
  for (const [raw, expected] of accepted) {
    it(`accepts ${JSON.stringify(raw)}`, () => assert.equal(value(normalizePhone(raw)), expected));
  }
  const rejected: [string, RegExp][] = [
    ['015112345678', /must be international/],
    ['4915112345678', /must be international/],
    ['(0151) 1234 5678', /must be international/],
    ['+1234567', /8 to 15 digits after \+, got 7/],
    ['+1234567890123456', /8 to 15 digits after \+, got 16/],
    ['+0049151123456', /cannot start with 0/],
    ['+49 151 1234+5678', /only lead/],
    ['+1-800-FLOWERS', /may contain only/],
    ['+49/151/12345678', /may contain only/],
    ['', /empty/],
    [`+${'1'.repeat(40)}`, /longer than/],
  ];
  for (const [raw, message] of rejected) {
    it(`rejects ${JSON.stringify(raw)}`, () => {
      const r = normalizePhone(raw);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.message, message);
    });
  }
  it('is idempotent and always yields E.164', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'0123456789 +-.()'), maxLength: 30 }), (raw) => {
        const r = normalizePhone(raw);
        if (!r.ok) return;
        assert.match(r.value, /^\+[1-9]\d{7,14}$/);
        assert.deepEqual(normalizePhone(r.value), r);
      }),
    );
  });
});

describe('normalizeEmail', () => {
  it('trims and lower-cases', () => {
    assert.equal(value(normalizeEmail('  Alice.Smith@Example.COM ')), 'alice.smith@example.com');
    assert.equal(value(normalizeEmail("O'Brien+tag@mail.example.co.uk")), "o'brien+tag@mail.example.co.uk");
  });
  for (const raw of [
    'alice',
    'alice@',
    '@example.com',
    'a b@example.com',
    'alice@example',
    'alice@@example.com',
    '',
  ]) {
    it(`rejects ${JSON.stringify(raw)}`, () => assert.equal(normalizeEmail(raw).ok, false));
  }
  it('rejects addresses over 254 characters', () => {
    assert.equal(normalizeEmail(`${'a'.repeat(242)}@example.com`).ok, true);
    assert.equal(normalizeEmail(`${'a'.repeat(243)}@example.com`).ok, false);
  });
  it('is exposed as a zod schema that reports the normalizer message', () => {
    assert.equal(EmailAddress.parse(' X@Y.io'), 'x@y.io');
    const r = EmailAddress.safeParse('nope');
    assert.equal(r.success, false);
    assert.match(r.error?.issues[0]?.message ?? '', /invalid email/);
  });
});

describe('normalizeSubjectValue', () => {
  it('keeps identity ids exactly and normalizes channels', () => {
    assert.equal(value(normalizeSubjectValue('identity', ' User-1 ')), ' User-1 ');
    assert.equal(value(normalizeSubjectValue('phone', '0049 151 12345678')), '+4915112345678');
    assert.equal(value(normalizeSubjectValue('email', 'A@B.co')), 'a@b.co');
    assert.equal(value(normalizeSubjectValue('device', ' d-1 ')), 'd-1');
    assert.equal(normalizeSubjectValue('credential', '   ').ok, false);
  });
});

describe('normalizeTimestamp', () => {
  const cases: [string, string][] = [
    ['2025-01-01T10:00:00Z', '2025-01-01T10:00:00.000Z'],
    ['2025-01-01T10:00:00+02:00', '2025-01-01T08:00:00.000Z'],
    ['2025-01-01T00:30:00-05:30', '2025-01-01T06:00:00.000Z'],
    ['2025-01-01t10:00:00z', '2025-01-01T10:00:00.000Z'],
    ['2025-01-01T10:00:00.123456789Z', '2025-01-01T10:00:00.123Z'],
    ['2025-01-01T10:00:00.5Z', '2025-01-01T10:00:00.500Z'],
    ['2024-02-29T23:00:00-01:00', '2024-03-01T00:00:00.000Z'],
    ['2025-01-01T10:00:00-00:00', '2025-01-01T10:00:00.000Z'],
  ];
  for (const [raw, expected] of cases) {
    it(`normalizes ${raw}`, () => assert.equal(value(normalizeTimestamp(raw, bounds)), expected));
  }
  const rejected: [string, RegExp][] = [
    ['2025-01-01T10:00:00', /RFC 3339/],
    ['2025-01-01 10:00:00Z', /RFC 3339/],
    ['2025-01-01T10:00Z', /RFC 3339/],
    ['2025-01-01T10:00:00+0200', /RFC 3339/],
    ['1735725600', /RFC 3339/],
    ['2023-02-29T00:00:00Z', /calendar date/],
    ['2025-04-31T00:00:00Z', /calendar date/],
    ['2025-01-01T24:00:00Z', /time of day/],
    ['2025-01-01T23:59:60Z', /time of day/],
    ['2025-01-01T10:00:00+24:00', /offset/],
    ['1999-12-31T23:59:59.999Z', /before 2000/],
    ['2100-01-01T00:00:00.001Z', /after 2100/],
  ];
  for (const [raw, message] of rejected) {
    it(`rejects ${raw}`, () => {
      const r = normalizeTimestamp(raw, bounds);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.message, message);
    });
  }
  it('agrees with Date for every valid instant', () => {
    fc.assert(
      fc.property(
        fc.date({ min: bounds.min, max: bounds.max, noInvalidDate: true }),
        fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }),
        (date, offset) => {
          const local = new Date(date.getTime() + offset * 60_000).toISOString().slice(0, 23);
          const sign = offset < 0 ? '-' : '+';
          const abs = Math.abs(offset);
          const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          const r = normalizeTimestamp(`${local}${zone}`, { min: new Date(0), max: new Date(8.64e15) });
          assert.equal(value(r), date.toISOString());
        },
      ),
    );
  });
});

describe('Timestamp schema', () => {
  const now = new Date('2025-06-01T12:00:00Z');
  it('accepts up to 24h ahead of the pinned now, and no more', () => {
    withNow(now, () => {
      assert.equal(Timestamp.parse('2025-06-02T12:00:00Z'), '2025-06-02T12:00:00.000Z');
      const r = Timestamp.safeParse('2025-06-02T12:00:00.001Z');
      assert.equal(r.success, false);
      assert.match(r.error?.issues[0]?.message ?? '', /more than 24h in the future/);
    });
  });
  it('follows the real clock outside withNow', () => {
    assert.equal(Timestamp.safeParse(new Date(Date.now() + 60_000).toISOString()).success, true);
    assert.equal(Timestamp.safeParse(new Date(Date.now() + 25 * 3600_000).toISOString()).success, false);
  });
  it('refuses asynchronous work inside withNow', () => {
    assert.throws(() => withNow(now, () => Promise.resolve(1)), TypeError);
  });
});
