import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { kafkaSecurity } from './client.ts';

test('no security settings: a plain connection', () => {
  assert.deepEqual(kafkaSecurity({}), {});
});

test('SCRAM over TLS with a custom CA, and mutual TLS, from PEM files read once', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kafka-tls-'));
  try {
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(dir, f), `-----${f}-----`);
    assert.deepEqual(
      kafkaSecurity({
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'engine',
        KAFKA_SASL_PASSWORD: 'secret',
        KAFKA_TLS_CA_FILE: path.join(dir, 'ca.pem'),
        KAFKA_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
        KAFKA_TLS_KEY_FILE: path.join(dir, 'key.pem'),
      }),
      {
        sasl: { mechanism: 'scram-sha-512', username: 'engine', password: 'secret' },
        tls: { ca: '-----ca.pem-----', cert: '-----cert.pem-----', key: '-----key.pem-----' },
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS with the system CAs when asked for without files', () => {
  assert.deepEqual(kafkaSecurity({ KAFKA_TLS: true }), { tls: true });
});

test('SASL PLAIN without TLS is refused: it would send the password in clear', () => {
  assert.throws(
    () =>
      kafkaSecurity({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }),
    /in clear/,
  );
});
