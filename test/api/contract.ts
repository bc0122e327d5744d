import assert from 'node:assert/strict';
import { Problem } from '@assurance/api';
import type { CallResult } from './support.ts';

/**
 * Checks that a live response is what the OpenAPI document promises: the operation exists, it
 * lists the status, and the content type matches. Body shapes are checked by parsing with the same
 * zod schemas the document was generated from.
 */
export type OpenApiDocument = {
  paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, unknown> }> }>>;
};

export function assertDocumented(
  doc: OpenApiDocument,
  method: string,
  template: string,
  res: CallResult,
): void {
  const operation = doc.paths[template]?.[method.toLowerCase()];
  assert.ok(operation, `${method} ${template} is not in the OpenAPI document`);
  const response = operation.responses[String(res.status)];
  assert.ok(response, `${method} ${template} answered ${res.status}, which the document does not list`);
  const mediaType = res.contentType.split(';')[0]?.trim() ?? '';
  assert.ok(
    Object.keys(response.content).some((c) => c.split(';')[0] === mediaType),
    `${method} ${template} ${res.status}: content type ${mediaType} not documented`,
  );
}

/** A problem document of the given type and status, with a request-id instance. */
export function assertProblem(res: CallResult, status: number, type: string): Problem {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text.slice(0, 300)}`);
  assert.match(res.contentType, /^application\/problem\+json/);
  const problem = Problem.parse(res.body);
  assert.equal(problem.status, status);
  assert.equal(problem.type, `urn:assurance:problem:${type}`);
  assert.match(problem.instance, /^urn:uuid:[0-9a-f-]{36}$/);
  assert.ok(problem.title.length > 0 && problem.detail.length > 0);
  return problem;
}
