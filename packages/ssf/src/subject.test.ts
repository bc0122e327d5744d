import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveSubject, SubjectError, type SubjectRules } from './subject.ts';

const rules: SubjectRules = {
  identityIssuers: ['https://idp.example.com'],
  opaqueIsIdentity: true,
  criticalMembers: [],
};

test('RFC 9493 formats name identities and channels', () => {
  assert.deepEqual(resolveSubject({ format: 'email', email: 'a@example.com' }, rules), {
    type: 'email',
    value: 'a@example.com',
  });
  assert.deepEqual(resolveSubject({ format: 'phone_number', phone_number: '+4915112345678' }, rules), {
    type: 'phone',
    value: '+4915112345678',
  });
  assert.deepEqual(
    resolveSubject({ format: 'iss_sub', iss: 'https://idp.example.com', sub: 'user-1' }, rules),
    {
      type: 'identity',
      value: 'user-1',
    },
  );
  assert.deepEqual(resolveSubject({ format: 'opaque', id: 'user-2' }, rules), {
    type: 'identity',
    value: 'user-2',
  });
  // Google's RISC says subject_type.
  assert.deepEqual(resolveSubject({ subject_type: 'email', email: 'b@example.com' }, rules), {
    type: 'email',
    value: 'b@example.com',
  });
});

test('subjects that name nothing of ours resolve to nothing (acknowledged, not applied)', () => {
  assert.equal(
    resolveSubject({ format: 'iss_sub', iss: 'https://other.example', sub: 'u' }, rules),
    undefined,
  );
  assert.equal(
    resolveSubject({ format: 'opaque', id: 'x' }, { ...rules, opaqueIsIdentity: false }),
    undefined,
  );
  assert.equal(resolveSubject({ format: 'did', url: 'did:example:123' }, rules), undefined);
  assert.equal(resolveSubject({ format: 'account', uri: 'acct:a@example.com' }, rules), undefined);
});

test('aliases: the first alias that names something of ours', () => {
  assert.deepEqual(
    resolveSubject(
      {
        format: 'aliases',
        identifiers: [
          { format: 'did', url: 'did:example:1' },
          { format: 'email', email: 'c@example.com' },
          { format: 'phone_number', phone_number: '+15555550100' },
        ],
      },
      rules,
    ),
    { type: 'email', value: 'c@example.com' },
  );
  assert.throws(
    () => resolveSubject({ format: 'aliases', identifiers: [{ format: 'aliases', identifiers: [] }] }, rules),
    /cannot itself be "aliases"/,
  );
});

test('complex subjects: the user, else the device; a critical member we cannot resolve refuses the SET', () => {
  const complex = {
    format: 'complex',
    user: { format: 'iss_sub', iss: 'https://idp.example.com', sub: 'user-3' },
    device: { format: 'opaque', id: 'dev-9' },
    session: { format: 'opaque', id: 's-1' },
  };
  assert.deepEqual(resolveSubject(complex, rules), { type: 'identity', value: 'user-3' });
  const { user: _u, ...deviceOnly } = complex;
  assert.deepEqual(resolveSubject(deviceOnly, rules), { type: 'device', value: 'dev-9' });
  // SSF 1.0 complex subjects without a format member.
  const { format: _f, ...noFormat } = complex;
  assert.deepEqual(resolveSubject(noFormat, rules), { type: 'identity', value: 'user-3' });
  assert.throws(
    () => resolveSubject(complex, { ...rules, criticalMembers: ['session'] }),
    /critical subject member "session"/,
  );
});

test('malformed subjects are errors, never guesses', () => {
  for (const bad of [
    null,
    'user-1',
    [],
    {},
    { format: 'email' },
    { format: 'email', email: '' },
    { format: 'phone_number', phone_number: 42 },
    { format: 'telepathy', id: 'x' },
    { format: 'email', email: 'x'.repeat(600) },
  ])
    assert.throws(() => resolveSubject(bad, rules), SubjectError, JSON.stringify(bad));
});
