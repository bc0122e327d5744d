import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssuranceError } from '@assurance/core';
import { generateSigningKey } from '@assurance/schemas';
import { loadEngineConfig } from './config.ts';

const valid = {
  KAFKA_BROKERS: '127.0.0.1:19092',
  SCHEMA_REGISTRY_URL: 'http://127.0.0.1:18081/apis/ccompat/v7',
  REDIS_URL: 'redis://127.0.0.1:16379',
  CHANNEL_HASH_SECRET: 'a-long-enough-secret',
  DECISION_SIGNING_KEY: JSON.stringify(generateSigningKey()),
};

test('a valid environment parses with typed defaults', () => {
  const c = loadEngineConfig(valid);
  assert.equal(c.LATE_EVENT_WINDOW, 7 * 86_400_000);
  assert.equal(c.MAX_CLOCK_SKEW, 10 * 60_000);
  assert.equal(c.REDIS_PREFIX, 'ra:');
});

test('every problem is reported at once, one line per variable', () => {
  try {
    loadEngineConfig({ SWEEP_INTERVAL: 'soon', CHANNEL_HASH_SECRET: 'short' });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof AssuranceError && err.code === 'config_invalid');
    for (const v of [
      'KAFKA_BROKERS',
      'SCHEMA_REGISTRY_URL',
      'REDIS_URL',
      'CHANNEL_HASH_SECRET',
      'DECISION_SIGNING_KEY',
      'SWEEP_INTERVAL',
    ]) {
      assert.match(err.message, new RegExp(`^  ${v}: `, 'm'));
    }
  }
});

test('cross-field: a sweep lease no longer than the interval would fire expiries twice', () => {
  assert.throws(
    () => loadEngineConfig({ ...valid, SWEEP_INTERVAL: '30s', SWEEP_LEASE: '10s' }),
    /SWEEP_LEASE/,
  );
});

test('a signing key that is not a private Ed25519 JWK is refused with what is wrong', () => {
  const { d: _d, ...publicHalf } = generateSigningKey();
  for (const [key, why] of [
    ['not json', /JWK in JSON/],
    [JSON.stringify(publicHalf), /private part d/],
    [JSON.stringify({ ...generateSigningKey(), crv: 'X25519' }), /Ed25519/],
  ] as const) {
    assert.throws(() => loadEngineConfig({ ...valid, DECISION_SIGNING_KEY: key }), why);
  }
});

test('Kafka security settings must make sense together', () => {
  assert.throws(
    () => loadEngineConfig({ ...valid, KAFKA_SASL_MECHANISM: 'scram-sha-512' }),
    /KAFKA_SASL_USERNAME/,
  );
  assert.throws(() => loadEngineConfig({ ...valid, KAFKA_SASL_USERNAME: 'engine' }), /KAFKA_SASL_MECHANISM/);
  assert.throws(() => loadEngineConfig({ ...valid, KAFKA_TLS_CERT_FILE: '/x.pem' }), /KAFKA_TLS_KEY_FILE/);
  const ok = loadEngineConfig({
    ...valid,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: 'engine',
    KAFKA_SASL_PASSWORD: 'p',
    KAFKA_TLS: 'true',
  });
  assert.equal(ok.KAFKA_TLS, true);
});

test('the store is one Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES), never both', () => {
  const { REDIS_URL: _url, ...withoutStore } = valid;
  const cluster = loadEngineConfig({ ...withoutStore, REDIS_CLUSTER_NODES: '10.0.0.1:6379, 10.0.0.2:6379' });
  assert.equal(cluster.REDIS_CLUSTER_NODES, '10.0.0.1:6379, 10.0.0.2:6379');
  assert.equal(cluster.REDIS_URL, undefined);
  assert.throws(
    () => loadEngineConfig({ ...valid, REDIS_CLUSTER_NODES: '10.0.0.1:6379' }),
    /REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both/,
  );
  assert.throws(
    () => loadEngineConfig({ ...withoutStore, REDIS_CLUSTER_NODES: 'redis://10.0.0.1:6379' }),
    /REDIS_CLUSTER_NODES must be host:port/,
  );
});

test('a Redis Cluster reached through a NAT or proxy: REDIS_CLUSTER_NAT_MAP, only with the cluster', () => {
  const { REDIS_URL: _url, ...withoutStore } = valid;
  const mapped = loadEngineConfig({
    ...withoutStore,
    REDIS_CLUSTER_NODES: '203.0.113.5:7001',
    REDIS_CLUSTER_NAT_MAP: '10.0.0.1:6379=203.0.113.5:7001,10.0.0.2:6379=203.0.113.5:7002',
  });
  assert.equal(mapped.REDIS_CLUSTER_NAT_MAP, '10.0.0.1:6379=203.0.113.5:7001,10.0.0.2:6379=203.0.113.5:7002');
  assert.throws(
    () => loadEngineConfig({ ...valid, REDIS_CLUSTER_NAT_MAP: '10.0.0.1:6379=203.0.113.5:7001' }),
    /REDIS_CLUSTER_NAT_MAP: REDIS_CLUSTER_NAT_MAP maps the nodes of a Redis Cluster: it needs REDIS_CLUSTER_NODES/,
  );
  assert.throws(
    () =>
      loadEngineConfig({
        ...withoutStore,
        REDIS_CLUSTER_NODES: '203.0.113.5:7001',
        REDIS_CLUSTER_NAT_MAP: '10.0.0.1:6379',
      }),
    /REDIS_CLUSTER_NAT_MAP must be announced=reachable/,
  );
});
