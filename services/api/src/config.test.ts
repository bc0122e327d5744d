import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssuranceError } from '@assurance/core';
import { loadApiConfig } from './config.ts';

const base = {
  KAFKA_BROKERS: '127.0.0.1:19092',
  SCHEMA_REGISTRY_URL: 'http://127.0.0.1:18081/apis/ccompat/v7',
  REDIS_URL: 'redis://127.0.0.1:16379',
  API_TOKENS: 'app:abcdefghijklmnopqrstuvwx:decisions:read',
};

test('defaults: loopback 8080, 16 KiB bodies, lag bound 1000, offsets sampled every 500 ms, stalls after 5 s', () => {
  const c = loadApiConfig(base);
  assert.equal(c.API_HOST, '127.0.0.1');
  assert.equal(c.API_PORT, 8080);
  assert.equal(c.BODY_LIMIT, 16 * 1024);
  assert.equal(c.MAX_ENGINE_LAG, 1000);
  assert.equal(c.LAG_REFRESH_INTERVAL, 500);
  assert.equal(c.MAX_STALL, 5000);
  assert.equal(c.ENGINE_GROUP_ID, 'assurance-engine');
  assert.equal(c.REDIS_PREFIX, 'ra:');
});

test('every problem is reported at once, one line per variable, without token values', () => {
  assert.throws(
    () =>
      loadApiConfig({
        ...base,
        REDIS_URL: 'not a url',
        API_TOKENS: 'app:tooshort:decisions:read',
        MAX_STALL: 'a while',
      }),
    (err: unknown) => {
      assert.ok(err instanceof AssuranceError);
      assert.equal(err.code, 'config_invalid');
      for (const v of ['REDIS_URL', 'API_TOKENS', 'MAX_STALL']) assert.match(err.message, new RegExp(v));
      assert.ok(!err.message.includes('tooshort'));
      return true;
    },
  );
});

test('a lag measurement must be able to be current: LAG_MAX_AGE > LAG_REFRESH_INTERVAL', () => {
  assert.throws(
    () => loadApiConfig({ ...base, LAG_REFRESH_INTERVAL: '5s', LAG_MAX_AGE: '2s' }),
    /LAG_MAX_AGE: LAG_MAX_AGE must be longer than LAG_REFRESH_INTERVAL/,
  );
});
