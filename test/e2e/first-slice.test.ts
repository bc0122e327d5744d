import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { envelope, startPipeline } from '../src/pipeline.ts';

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
before(async () => {
  p = await startPipeline();
});
after(() => p.stop());

test('a registry-Avro SIM swap on a bound phone excludes sms_otp with a reason code', async () => {
  const identityId = `user-${Date.now()}`;
  const phone = '+33 6 12 34 56 78';
  await p.producer.send(
    p.topics.channelBinding,
    identityId,
    {
      ...envelope(-60_000),
      identityId,
      op: 'bound',
      channel: { type: 'phone', value: phone },
      uses: { authenticators: ['sms_otp', 'voice_otp'], recovery: ['sms_code'] },
    },
    'avro',
  );
  const baseline = await p.watcher.waitFor(identityId, () => true);
  assert.equal(
    baseline.tiers.high.excludedAuthenticators.some((e) => e.authenticator === 'sms_otp'),
    true,
  );

  await p.producer.send(
    p.topics.simSwap,
    '+33612345678',
    {
      ...envelope(),
      phoneNumber: phone,
      swappedAt: new Date(Date.now() - 3_600_000).toISOString(),
      changeType: 'sim_change',
      carrier: 'Orange',
    },
    'avro',
  );
  const d = await p.watcher.waitFor(identityId, (x) => x.signals.some((s) => s.code === 'sim_swap'));
  const medium = d.tiers.medium.excludedAuthenticators.find((e) => e.authenticator === 'sms_otp');
  assert.ok(medium, 'sms_otp excluded at medium once the SIM is swapped');
  assert.ok(medium.reasons.length > 0);
  assert.ok(!d.tiers.medium.acceptableAuthenticators.includes('sms_otp'));
  assert.ok(d.sequence > baseline.sequence);
  assert.equal(d.trigger.topic, 'identity.sim-swap.v1');
  // Channel values never appear in a decision: the phone is only a keyed hash.
  assert.ok(!JSON.stringify(d).includes('612345678'));
});
