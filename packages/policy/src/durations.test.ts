import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from './durations.ts';

describe('durations', () => {
  it('parses one number and one unit', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('72h'), 259_200_000);
    assert.equal(parseDuration('14d'), 1_209_600_000);
    assert.equal(parseDuration('2w'), 1_209_600_000);
    assert.equal(parseDuration('250ms'), 250);
  });
  it('rejects anything else', () => {
    for (const bad of ['', '14', 'd', '1h30m', '1.5h', '-1h', ' 1h', '1H', '14 d']) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
  });
  it('formats with the largest exact unit', () => {
    assert.equal(formatDuration(1_209_600_000), '2w');
    assert.equal(formatDuration(259_200_000), '3d');
    assert.equal(formatDuration(5_400_000), '90m');
    assert.equal(formatDuration(1_500), '1500ms');
  });
});
