import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildOpenApiDocument, renderOpenApi } from './openapi.ts';
import { OPENAPI_FILE } from './openapi-file.ts';
import { ROUTES } from './routes/index.ts';

test('the committed openapi.json is what the code generates (run: node services/api/src/openapi-cli.ts)', () => {
  assert.equal(readFileSync(OPENAPI_FILE, 'utf8'), renderOpenApi());
});

test('every route is documented with its security, and every $ref resolves', () => {
  const doc = buildOpenApiDocument() as {
    paths: Record<string, Record<string, { security: unknown[]; responses: Record<string, unknown> }>>;
    components: { schemas: Record<string, unknown> };
  };
  for (const route of ROUTES) {
    const op = doc.paths[route.path]?.[route.method.toLowerCase()];
    assert.ok(op, `${route.method} ${route.path}`);
    const security = route.scope
      ? [{ bearerAuth: [route.scope] }]
      : route.auth === 'transmitter'
        ? [{ transmitterAuth: [] }]
        : [];
    assert.deepEqual(op.security, security);
    if (route.scope || route.auth)
      for (const s of ['401', '403']) assert.ok(op.responses[s], `${route.path} ${s}`);
    if (route.rawBody) assert.ok(op.responses['400'], `${route.path} 400`);
    if (route.body) for (const s of ['400', '413', '415']) assert.ok(op.responses[s], `${route.path} ${s}`);
  }
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
    (m) => m[1],
  );
  assert.ok(refs.length > 0);
  for (const ref of refs) assert.ok(ref && doc.components.schemas[ref], `dangling $ref ${ref}`);
  assert.ok(!JSON.stringify(doc.components.schemas).includes('"$schema"'));
});
