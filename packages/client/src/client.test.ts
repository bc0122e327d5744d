import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssuranceClientError, type AssuranceClientOptions, createAssuranceClient } from '@assurance/client';
import { policy } from './test-support.ts';

describe('createAssuranceClient (public API, imported by package name)', () => {
  it('rejects an unknown mode', () => {
    assert.throws(
      () => createAssuranceClient({ mode: 'carrier-pigeon' } as unknown as AssuranceClientOptions),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'invalid_options',
    );
  });

  it('a closed client refuses calls with client_closed', async () => {
    const client = createAssuranceClient({ mode: 'http', baseUrl: 'http://127.0.0.1:9', token: 't', policy });
    assert.equal(client.health().ready, true);
    await client.close();
    await assert.rejects(
      client.requirementFor('alice', 'payout.change'),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'client_closed',
    );
    assert.equal(client.health().closed, true);
  });

  it('invalid arguments throw before any request', async () => {
    const client = createAssuranceClient({ mode: 'http', baseUrl: 'http://127.0.0.1:9', token: 't', policy });
    await assert.rejects(
      client.verify('', 'payout.change', {}),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'invalid_request',
    );
  });

  it('topic mode rejects a bad topic name synchronously', () => {
    assert.throws(
      () => createAssuranceClient({ mode: 'topic', brokers: '127.0.0.1:9', topic: 'bad topic!', policy }),
      (e: unknown) => e instanceof AssuranceClientError && e.code === 'invalid_options',
    );
  });
});
