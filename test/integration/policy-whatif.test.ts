/**
 * What-if answers of a shadow policy for one identity (issue: policy shadow mode): the API, given
 * SHADOW_POLICIES, answers `?policy=<name>` with what that candidate would require of the same
 * state now, behind its own scope; the live answer is untouched.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadPolicyFile } from '@assurance/policy';
import { startTestApi, type TestApi, TOKENS } from '../api/support.ts';
import { writeStricterPolicy } from '../src/harness.ts';
import { envelope, startPipeline } from '../src/pipeline.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: TestApi;
let dir: string;

before(async () => {
  p = await startPipeline();
  dir = mkdtempSync(path.join(tmpdir(), 'whatif-'));
  // A stricter candidate: no SMS or voice codes for medium actions (the live policy accepts them).
  const stricter = writeStricterPolicy(dir, '1.2.0-candidate');
  api = await startTestApi(p.config, { SHADOW_POLICIES: `stricter=${stricter}` });
});

after(async () => {
  await api?.stop();
  await p?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('?policy=<shadow> answers what the candidate would require of the same state; the live answer is untouched', async () => {
  const id = `whatif-${Date.now()}`;
  await p.producer.send(p.topics.channelBinding, id, {
    ...envelope(-60_000),
    identityId: id,
    op: 'bound',
    channel: { type: 'phone', value: `+4915155${String(Date.now() % 100_000).padStart(5, '0')}` },
    uses: { authenticators: ['sms_otp'], recovery: ['sms_code'] },
  });
  await p.watcher.waitFor(id, () => true);
  const path_ = `/v1/identities/${id}/assurance`;
  const live = await api.call('GET', path_, { token: TOKENS.policyOwner });
  const shadow = await api.call('GET', `${path_}?policy=stricter`, { token: TOKENS.policyOwner });
  assert.equal(live.status, 200);
  assert.equal(shadow.status, 200, shadow.text);
  const [l, s] = [live.body, shadow.body] as Array<{
    policyVersion: string;
    degraded: boolean;
    tiers: Record<string, { acceptableAuthenticators: string[] }>;
  }>;
  assert.equal(l?.policyVersion, loadPolicyFile().version);
  assert.equal(s?.policyVersion, '1.2.0-candidate');
  assert.equal(s?.degraded, false);
  assert.ok(l?.tiers.medium?.acceptableAuthenticators.includes('sms_otp'));
  assert.ok(!s?.tiers.medium?.acceptableAuthenticators.includes('sms_otp'));
  assert.ok(!s?.tiers.medium?.acceptableAuthenticators.includes('voice_otp'));
  assert.deepEqual(s?.tiers.low, l?.tiers.low);
  // One action, with the candidate's tier map.
  const action = await api.call('GET', `${path_}?policy=stricter&action=profile.update`, {
    token: TOKENS.policyOwner,
  });
  assert.equal((action.body as { tier: string }).tier, 'medium');
});

test('what-if needs policy:read, and names a shadow policy that exists', async () => {
  const path_ = '/v1/identities/someone/assurance';
  const denied = await api.call('GET', `${path_}?policy=stricter`, { token: TOKENS.reader });
  assert.equal(denied.status, 403);
  assert.equal((denied.body as { requiredScope: string }).requiredScope, 'policy:read');
  const missing = await api.call('GET', `${path_}?policy=nonesuch`, { token: TOKENS.policyOwner });
  assert.equal(missing.status, 404);
  assert.deepEqual((missing.body as { shadowPolicies: string[] }).shadowPolicies, ['stricter']);
});
