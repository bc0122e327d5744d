import type { z } from 'zod';

/**
 * Why a message broke the contract. The codes are a subset of `@assurance/core`'s `ERROR_CODES`
 * with the same meaning, so the engine maps them one to one, and all of them dead-letter: the
 * engine asks its registry before it reports `unknown_schema_id`, and a registry it cannot reach
 * is its own `registry_unavailable`, which it retries (docs/dead-letters.md).
 */
export const CONTRACT_ERROR_CODES = [
  'message_too_large',
  'empty_message',
  'unknown_encoding',
  'invalid_json',
  'invalid_utf8',
  'invalid_avro',
  'unknown_schema_id',
  'validation_failed',
  'key_mismatch',
] as const;
/** A contract error code. */
export type ContractErrorCode = (typeof CONTRACT_ERROR_CODES)[number];

/** Longest message kept on an error: it ends up in a DLQ header and in logs. */
const MESSAGE_MAX = 500;

/**
 * A message that cannot be decoded or does not satisfy the v1 contract. Messages never echo field
 * values (they can be phone numbers or addresses); `issues` names paths and rules only.
 */
export class ContractError extends Error {
  readonly code: ContractErrorCode;
  /** For `validation_failed`: one `path: message` string per zod issue (`<root>` for the value itself). */
  readonly issues: readonly string[];

  constructor(
    code: ContractErrorCode,
    message: string,
    options: { cause?: unknown; issues?: string[] } = {},
  ) {
    const short = message.length > MESSAGE_MAX ? `${message.slice(0, MESSAGE_MAX - 1)}…` : message;
    super(short, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ContractError';
    this.code = code;
    this.issues = Object.freeze([...(options.issues ?? [])]);
  }
}

/** True for a {@link ContractError} (also across duplicated module instances, by name and code). */
export function isContractError(error: unknown): error is ContractError {
  return (
    error instanceof ContractError ||
    (error instanceof Error &&
      error.name === 'ContractError' &&
      (CONTRACT_ERROR_CODES as readonly unknown[]).includes((error as { code?: unknown }).code))
  );
}

/**
 * Flattens zod issues to `path: message` strings. Unrecognized keys become one entry per key at the
 * key's own path, so "extra field" errors point at the field.
 */
export function flattenIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  const at = (path: readonly PropertyKey[]) => (path.length === 0 ? '<root>' : path.map(String).join('.'));
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${at([...issue.path, key])}: unrecognized key`);
    } else out.push(`${at(issue.path)}: ${issue.message}`);
  }
  return out;
}
