import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNatMap } from './connect.ts';

test('a NAT map names, for each announced node address, where this process reaches it', () => {
  assert.deepEqual(parseNatMap('10.0.0.1:6379=127.0.0.1:7001, 10.0.0.2:6379=proxy.local:7002'), {
    '10.0.0.1:6379': { host: '127.0.0.1', port: 7001 },
    '10.0.0.2:6379': { host: 'proxy.local', port: 7002 },
  });
  assert.throws(() => parseNatMap('10.0.0.1:6379'), /not a host:port/);
  assert.throws(() => parseNatMap('10.0.0.1:6379=a:1=b:2'), /not an announced=reachable pair/);
  assert.throws(() => parseNatMap('10.0.0.1:6379=nowhere'), /not a host:port: "nowhere"/);
});
