import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type HealthFacts, type HealthRules, unhealthy } from './health.ts';

const NOW = 1_800_000_000_000;
const none: HealthFacts = {
  status: undefined,
  statusAt: undefined,
  verifiedAt: undefined,
  verificationFailedAt: undefined,
};
const pushOnly: HealthRules = { statusRead: false, statusMaxAgeMs: 30_000, verify: undefined };
const managed: HealthRules = { statusRead: true, statusMaxAgeMs: 30_000, verify: { maxAgeMs: 120_000 } };

test('a push-only transmitter is healthy until it announces a pause or a disable', () => {
  assert.equal(unhealthy(none, pushOnly, NOW), undefined);
  assert.equal(unhealthy({ ...none, status: 'paused', statusAt: NOW }, pushOnly, NOW), 'paused');
  assert.equal(unhealthy({ ...none, status: 'disabled', statusAt: NOW }, pushOnly, NOW), 'disabled');
  assert.equal(unhealthy({ ...none, status: 'enabled', statusAt: NOW }, pushOnly, NOW), undefined);
});

test('a managed transmitter: nothing known (a Redis that lost its record) is not healthy', () => {
  assert.equal(unhealthy(none, managed, NOW), 'status_unknown');
  const fresh = {
    status: 'enabled',
    statusAt: NOW - 1000,
    verifiedAt: NOW - 1000,
    verificationFailedAt: undefined,
  };
  assert.equal(unhealthy(fresh, managed, NOW), undefined);
  assert.equal(unhealthy({ ...fresh, statusAt: NOW - 31_000 }, managed, NOW), 'status_unknown');
  assert.equal(unhealthy({ ...fresh, verifiedAt: undefined }, managed, NOW), 'verification_overdue');
  assert.equal(unhealthy({ ...fresh, verifiedAt: NOW - 121_000 }, managed, NOW), 'verification_overdue');
  assert.equal(unhealthy({ ...fresh, verificationFailedAt: NOW }, managed, NOW), 'verification_failed');
  // A later successful verification heals an earlier failure.
  assert.equal(unhealthy({ ...fresh, verificationFailedAt: NOW - 5000 }, managed, NOW), undefined);
  assert.equal(unhealthy({ ...fresh, status: 'sleeping' }, managed, NOW), 'status_unknown');
});

test('property: healthy only when every fact says so (the oracle written from the contract)', () => {
  const time = fc.option(fc.integer({ min: NOW - 300_000, max: NOW }), { nil: undefined });
  fc.assert(
    fc.property(
      fc.record({
        status: fc.constantFrom(undefined, 'enabled', 'paused', 'disabled', 'other'),
        statusAt: time,
        verifiedAt: time,
        verificationFailedAt: time,
      }),
      fc.boolean(),
      fc.boolean(),
      (facts, statusRead, verify) => {
        const rules: HealthRules = {
          statusRead,
          statusMaxAgeMs: 30_000,
          verify: verify ? { maxAgeMs: 120_000 } : undefined,
        };
        const statusOk =
          (facts.status === undefined || facts.status === 'enabled') &&
          (!statusRead || (facts.statusAt !== undefined && NOW - facts.statusAt <= 30_000));
        const verifyOk =
          !verify ||
          (facts.verifiedAt !== undefined &&
            NOW - facts.verifiedAt <= 120_000 &&
            (facts.verificationFailedAt === undefined || facts.verificationFailedAt <= facts.verifiedAt));
        assert.equal(
          unhealthy(facts, rules, NOW) === undefined,
          statusOk && verifyOk,
          JSON.stringify({ facts, statusRead, verify }),
        );
      },
    ),
    { numRuns: 2000 },
  );
});
