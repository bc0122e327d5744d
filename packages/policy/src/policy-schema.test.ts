import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseDocument } from 'yaml';
import { defaultPolicyPath, loadPolicy, PolicyError, type PolicyIssue } from './load.ts';

const text = readFileSync(defaultPolicyPath, 'utf8');

/** Edits the default policy through the YAML document API and returns every issue it raises. */
function issuesAfter(edit: (doc: ReturnType<typeof parseDocument>) => void): PolicyIssue[] {
  const doc = parseDocument(text);
  edit(doc);
  try {
    loadPolicy(doc.toString(), 'edited.yaml');
  } catch (error) {
    assert.ok(error instanceof PolicyError, String(error));
    return [...error.issues];
  }
  assert.fail('expected the edited policy to be rejected');
}

function pathsAndMessages(issues: PolicyIssue[]): string[] {
  return issues.map((issue) => `${issue.path}: ${issue.message}`);
}

describe('policy schema errors name the YAML path and the reason', () => {
  const table: Array<{
    name: string;
    edit: (doc: ReturnType<typeof parseDocument>) => void;
    expected: string;
  }> = [
    {
      name: 'unknown authenticator in a rule',
      edit: (doc) => doc.setIn(['rules', 3, 'effects', 'exclude'], doc.createNode(['sms'])),
      expected: 'rules[3].effects.exclude[0]: unknown authenticator "sms"',
    },
    {
      name: 'unknown recovery method in a tier',
      edit: (doc) => doc.setIn(['tiers', 'low', 'recovery', 1], 'postcard'),
      expected: 'tiers.low.recovery[1]: unknown recovery method "postcard"',
    },
    {
      name: 'duplicate in a set',
      edit: (doc) =>
        doc.setIn(['rules', 0, 'effects', 'excludeBound'], doc.createNode(['sms_otp', 'sms_otp'])),
      expected: 'rules[0].effects.excludeBound[1]: duplicate "sms_otp"',
    },
    {
      name: 'unknown tier for an action (dotted keys are quoted)',
      edit: (doc) => doc.setIn(['actions', 'payout.change'], 'extreme'),
      expected: 'actions["payout.change"]: unknown tier "extreme"',
    },
    {
      name: 'bad duration',
      edit: (doc) => doc.setIn(['signals', 'sim_swap', 'window'], 'two weeks'),
      expected:
        'signals.sim_swap.window: invalid duration "two weeks": expected a duration such as 10m, 72h or 14d',
    },
    {
      name: 'duration written as a bare number',
      edit: (doc) => doc.setIn(['signals', 'device_new', 'ttl'], 72),
      expected: 'signals.device_new.ttl: expected a duration such as 10m, 72h or 14d',
    },
    {
      name: 'missing field',
      edit: (doc) => doc.deleteIn(['tiers', 'high', 'maxAge']),
      expected: 'tiers.high.maxAge: is required',
    },
    {
      name: 'typo in an effect name',
      edit: (doc) => doc.setIn(['rules', 0, 'effects', 'excludes'], doc.createNode(['push'])),
      expected: 'rules[0].effects: Unrecognized key: "excludes"',
    },
    {
      name: 'unknown signal code',
      edit: (doc) => doc.setIn(['rules', 0, 'when', 'signals', 0], 'sim_swapped'),
      expected: 'rules[0].when.signals[0]: unknown signal code "sim_swapped"',
    },
    {
      name: 'mailbox change without a decision',
      edit: (doc) => doc.deleteIn(['signals', 'mailbox_tampered', 'changes', 'delegate_added']),
      expected: 'signals.mailbox_tampered.changes.delegate_added: is required',
    },
    {
      name: 'version that is not semver',
      edit: (doc) => doc.set('version', 'v1'),
      expected: 'version: expected semver',
    },
    {
      name: 'holdFor without hold',
      edit: (doc) => doc.setIn(['rules', 0, 'effects', 'holdFor'], '1h'),
      expected: 'rules[0].effects.holdFor: holdFor needs hold',
    },
    {
      name: 'rule without effects',
      edit: (doc) => doc.setIn(['rules', 0, 'effects'], doc.createNode({ excludeFrom: 'high' })),
      expected: 'rules[0].effects: a rule needs at least one effect',
    },
    {
      name: 'both allOf and signals',
      edit: (doc) => doc.setIn(['rules', 4, 'when', 'signals'], doc.createNode(['sim_swap'])),
      expected: 'rules[4].when.allOf: use either allOf or signals/scopes/attributes',
    },
  ];
  for (const { name, edit, expected } of table) {
    it(name, () =>
      assert.ok(
        pathsAndMessages(issuesAfter(edit)).includes(expected),
        pathsAndMessages(issuesAfter(edit)).join('\n'),
      ),
    );
  }
});

describe('cross-field checks', () => {
  it('rejects a higher tier weaker than a lower one', () => {
    const cases: Array<[(doc: ReturnType<typeof parseDocument>) => void, string]> = [
      [
        (doc) => doc.setIn(['tiers', 'high', 'authenticators', 0], 'password'),
        'tiers.high.authenticators: accepts "password" which medium does not; a higher tier must not be weaker',
      ],
      [
        (doc) => doc.setIn(['tiers', 'critical', 'authenticators', 0], 'totp'),
        'tiers.critical.authenticators: "totp" is not phishing-resistant but requirePhishingResistant is true',
      ],
      [
        (doc) => doc.setIn(['tiers', 'medium', 'outcome'], 'deny'),
        'tiers.high.outcome: weaker than medium; a higher tier must not be weaker',
      ],
      [
        (doc) => doc.setIn(['tiers', 'critical', 'maxAge'], '2h'),
        "tiers.critical.maxAge: longer than high's; a higher tier must not be weaker",
      ],
      [
        (doc) => doc.setIn(['tiers', 'critical', 'recovery', 0], 'sms_code'),
        'tiers.critical.recovery: allows "sms_code" which high does not; a higher tier must not be weaker',
      ],
      [
        (doc) => doc.setIn(['tiers', 'medium', 'requireLiveness'], true),
        'tiers.high.requireLiveness: off while medium has it on; a higher tier must not be weaker',
      ],
    ];
    for (const [edit, expected] of cases) {
      const issues = pathsAndMessages(issuesAfter(edit));
      assert.ok(issues.includes(expected), `${expected}\nnot in:\n${issues.join('\n')}`);
    }
  });

  it('rejects duplicate rule ids and reason codes', () => {
    const issues = pathsAndMessages(
      issuesAfter((doc) => {
        doc.setIn(['rules', 1, 'id'], 'sim-swap');
        doc.setIn(['rules', 1, 'reasons', 0, 'code'], 'sim_swap.phone_bound');
      }),
    );
    assert.ok(issues.includes('rules[1].id: duplicate rule id "sim-swap"'), issues.join('\n'));
    assert.ok(
      issues.includes('rules[1].reasons[0].code: reason code "sim_swap.phone_bound" is already used'),
    );
  });
});

describe('YAML problems', () => {
  it('reports syntax errors and duplicate keys with a line number', () => {
    assert.throws(
      () => loadPolicy('version: 1.0.0\nversion: 1.0.1\n', 'dup.yaml'),
      (error: unknown) =>
        error instanceof PolicyError &&
        error.issues[0]?.line === 2 &&
        /unique/.test(error.issues[0].message) &&
        error.message.includes('dup.yaml:2'),
    );
    assert.throws(() => loadPolicy('rules: [\n', 'broken.yaml'), PolicyError);
  });

  it('gives schema issues the line of the offending node', () => {
    const lines = text.split('\n');
    const line = lines.findIndex((l) => l.includes('window: 14d')) + 1;
    assert.throws(
      () => loadPolicy(text.replace('window: 14d', 'window: soon'), 'edited.yaml'),
      (error: unknown) =>
        error instanceof PolicyError &&
        error.issues.some((i) => i.path === 'signals.sim_swap.window' && i.line === line) &&
        error.message.includes(`edited.yaml:${line}: signals.sim_swap.window: invalid duration "soon"`),
    );
  });

  it('rejects an empty document', () => {
    assert.throws(() => loadPolicy(''), PolicyError);
  });
});
