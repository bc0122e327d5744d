import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssuranceClientError, isAssuranceClientError } from './errors.ts';
import { baseUrlOf, boundedInt, brokerList, checkToken } from './options.ts';

const invalidOptions = (e: unknown) => e instanceof AssuranceClientError && e.code === 'invalid_options';

describe('options', () => {
  it('brokers: a list or a comma-separated string of host:port', () => {
    assert.deepEqual(brokerList(' a:9092, b:9093 ,'), ['a:9092', 'b:9093']);
    assert.deepEqual(brokerList(['127.0.0.1:19092']), ['127.0.0.1:19092']);
    assert.throws(() => brokerList(''), invalidOptions);
    assert.throws(() => brokerList(['nohost']), invalidOptions);
  });
  it('baseUrl: http(s), no credentials or query, trailing slashes dropped', () => {
    assert.equal(baseUrlOf('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080');
    assert.equal(baseUrlOf('https://api.example.net/assurance//'), 'https://api.example.net/assurance');
    for (const bad of ['not a url', 'ftp://x', 'https://u:p@x', 'https://x/?a=1']) {
      assert.throws(() => baseUrlOf(bad), invalidOptions, bad);
    }
  });
  it('bounded integers take defaults and reject nonsense', () => {
    assert.equal(boundedInt('t', undefined, 5, 10), 5);
    assert.equal(boundedInt('t', 7, 5, 10), 7);
    for (const bad of [0, -1, 1.5, 11, Number.NaN])
      assert.throws(() => boundedInt('t', bad, 5, 10), invalidOptions);
  });
  it('tokens: non-empty, single line; functions are checked per call', () => {
    checkToken('abc');
    checkToken(() => '');
    assert.throws(() => checkToken(' '), invalidOptions);
    assert.throws(() => checkToken('a\r\nx-injected: 1'), invalidOptions);
  });
  it('errors carry a code from the closed list and are recognised across module copies', () => {
    const e = new AssuranceClientError('unauthorized', 'no', {
      status: 401,
      problem: { title: 'Unauthorized' },
    });
    assert.equal(e.retriable, false);
    assert.equal(new AssuranceClientError('bootstrap_failed', 'later').retriable, true);
    assert.equal(isAssuranceClientError(e), true);
    const lookalike = Object.assign(new Error('x'), { name: 'AssuranceClientError', code: 'forbidden' });
    assert.equal(isAssuranceClientError(lookalike), true);
    assert.equal(isAssuranceClientError(new Error('x')), false);
  });
});
