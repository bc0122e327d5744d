/**
 * Engines that start together on a fresh cluster each provision the schemas. A subject's first
 * registration is two requests (the schema, then its BACKWARD compatibility); between them the
 * real registry reports its default, NONE. An engine that looks then must wait for the other to
 * finish, not exit; a subject someone really set to another level must still be refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RegistryCodec } from '@assurance/kafka';
import { endpoints, uniqueName } from '../src/harness.ts';

const SCHEMA = {
  type: 'record',
  name: 'Probe',
  namespace: 'assurance.test',
  fields: [{ name: 'id', type: 'string' }],
};

async function registry(): Promise<{
  url: string;
  call: (method: string, path: string, body?: object) => Promise<Response>;
}> {
  const url = (await endpoints()).SCHEMA_REGISTRY_URL;
  return {
    url,
    call: (method, path, body) =>
      fetch(`${url}${path}`, {
        method,
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        ...(body ? { body: JSON.stringify(body) } : {}),
      }),
  };
}

describe('provisioning a subject another engine is creating', () => {
  test('the schema registered, its compatibility not set yet: waits until it is, then registers', async () => {
    const r = await registry();
    const subject = `${uniqueName('halfway')}-value`;
    // The other engine's first request: the subject exists, at the registry's default level.
    const first = await r.call('POST', `/subjects/${subject}/versions`, { schema: JSON.stringify(SCHEMA) });
    assert.equal(first.status, 200, await first.text());
    const level = await (await r.call('GET', `/config/${subject}`)).json();
    assert.notEqual(
      String((level as { compatibilityLevel?: string }).compatibilityLevel).toUpperCase(),
      'BACKWARD',
    );

    const codec = new RegistryCodec({ url: r.url });
    // Without waiting, this is the refusal that made an engine exit at start.
    await assert.rejects(codec.register(subject, SCHEMA, 0), /BACKWARD != NONE/);
    const registering = codec.register(subject, SCHEMA);
    // Its second request, a moment later.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const second = await r.call('PUT', `/config/${subject}`, { compatibility: 'BACKWARD' });
    assert.equal(second.status, 200, await second.text());
    const id = await registering;
    assert.ok(Number.isInteger(id) && id > 0);
  });

  test('a subject set to another level is refused with the registry’s words, after its retries', async () => {
    const r = await registry();
    const subject = `${uniqueName('other-level')}-value`;
    assert.equal(
      (await r.call('POST', `/subjects/${subject}/versions`, { schema: JSON.stringify(SCHEMA) })).status,
      200,
    );
    assert.equal((await r.call('PUT', `/config/${subject}`, { compatibility: 'FULL' })).status, 200);
    const codec = new RegistryCodec({ url: r.url });
    await assert.rejects(
      codec.register(subject, SCHEMA, 600),
      /Compatibility does not match the configuration \(BACKWARD != FULL\)/,
    );
  });
});
