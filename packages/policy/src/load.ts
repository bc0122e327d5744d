import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { digestOf } from './canonical.ts';
import type { Tier } from './contract.ts';
import { type DeepReadonly, type PolicyDocument, PolicyDocumentSchema } from './policy-schema.ts';

/** Where the shipped default policy lives. */
export const defaultPolicyPath: string = fileURLToPath(new URL('../policies/default.yaml', import.meta.url));

/** One problem in a policy or case file: a YAML path such as `rules[3].effects.exclude[0]` and a reason. */
export interface PolicyIssue {
  path: string;
  message: string;
  /** 1-based line in the source, when the YAML node could be located. */
  line?: number;
}

/** Thrown for unreadable or invalid policy (and case) files; `issues` lists every problem found. */
export class PolicyError extends Error {
  readonly issues: readonly PolicyIssue[];
  readonly source: string;

  constructor(source: string, issues: PolicyIssue[], options?: { cause?: unknown }) {
    const lines = issues.map((issue) => `  ${formatIssue(source, issue)}`);
    super(`invalid policy ${source}:\n${lines.join('\n')}`, options);
    this.name = 'PolicyError';
    this.source = source;
    this.issues = issues;
  }
}

/** `source:line: path: message`, the form editors and CI logs link to. */
export function formatIssue(source: string, issue: PolicyIssue): string {
  const where = issue.line === undefined ? source : `${source}:${issue.line}`;
  return issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** A loaded, validated and frozen policy. */
export type Policy = DeepReadonly<PolicyDocument> & {
  /** `sha256:<hex>` of the canonical JSON of the normalized document. */
  readonly digest: string;
  /** File name or label the policy came from (for messages only; not part of the digest). */
  readonly source: string;
  /** The tier of an action, or undefined when the policy does not name it. */
  tierOf(action: string): Tier | undefined;
  /**
   * The tier of an action.
   * @throws UnknownActionError when the policy does not name it: a misspelt action is the caller's
   * bug, and silently mapping it to a tier would hide that bug behind a plausible answer.
   */
  tierFor(action: string): Tier;
  /** Every action the policy names, sorted. */
  readonly actionNames: readonly string[];
};

/** An action the policy does not name; `known` lists the ones it does. */
export class UnknownActionError extends Error {
  readonly action: string;
  readonly known: readonly string[];

  constructor(action: string, known: readonly string[]) {
    super(`unknown action "${action.slice(0, 100)}"; the policy knows: ${known.join(', ')}`);
    this.name = 'UnknownActionError';
    this.action = action;
    this.known = known;
  }
}

/** Renders a zod/YAML path as `rules[3].effects.exclude[0]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(key))) out += `[${JSON.stringify(String(key))}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/**
 * Parses YAML and validates it with `schema`, mapping every problem to a YAML path and line.
 * Shared by policies and case files.
 */
export function parseYamlWith<S extends z.ZodType>(schema: S, yamlText: string, source: string): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      source,
      doc.errors.map((error) => ({
        path: '',
        message: error.message.split('\n')[0] ?? error.message,
        line: lineCounter.linePos(error.pos[0]).line,
      })),
    );
  }
  const result = schema.safeParse(doc.toJS({ maxAliasCount: 1000 }));
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    // Walk up until a node exists: paths into aliases or missing keys point at the nearest parent.
    let line: number | undefined;
    for (let depth = issue.path.length; depth >= 0 && line === undefined; depth--) {
      const node = doc.getIn(issue.path.slice(0, depth) as Array<string | number>, true);
      if (isNode(node) && node.range) line = lineCounter.linePos(node.range[0]).line;
    }
    const message = issue.message.endsWith('received undefined') ? 'is required' : issue.message;
    return { path: formatPath(issue.path), message, ...(line === undefined ? {} : { line }) };
  });
  throw new PolicyError(source, issues);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/**
 * Loads a policy from YAML text.
 * @throws PolicyError with every issue found (YAML syntax, schema, cross-field checks).
 */
export function loadPolicy(yamlText: string, sourceName = '<inline>'): Policy {
  const document = parseYamlWith(PolicyDocumentSchema, yamlText, sourceName);
  const digest = digestOf(document);
  const actions = new Map(Object.entries(document.actions));
  const actionNames = [...actions.keys()].sort();
  const policy = {
    ...document,
    digest,
    source: sourceName,
    actionNames,
    tierOf: (action: string): Tier | undefined => actions.get(action),
    tierFor: (action: string): Tier => {
      const tier = actions.get(action);
      if (tier === undefined) throw new UnknownActionError(action, actionNames);
      return tier;
    },
  };
  return deepFreeze(policy) as Policy;
}

/**
 * Loads a policy file (defaults to the shipped default policy).
 * @throws PolicyError when the file cannot be read or is invalid.
 */
export function loadPolicyFile(path: string = defaultPolicyPath): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new PolicyError(path, [{ path: '', message: `cannot read file: ${(error as Error).message}` }], {
      cause: error,
    });
  }
  return loadPolicy(text, path);
}

/**
 * The candidate policies of `SHADOW_POLICIES` (`name=path,...`), loaded and validated, by name.
 * @throws PolicyError for a file that is not a valid policy; Error for a name given twice.
 */
export function loadShadowPolicies(spec: string | undefined): ReadonlyMap<string, Policy> {
  const out = new Map<string, Policy>();
  if (!spec) return out;
  for (const pair of spec.split(',')) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const file = pair.slice(eq + 1).trim();
    if (out.has(name)) throw new Error(`SHADOW_POLICIES names "${name}" twice`);
    out.set(name, loadPolicyFile(file));
  }
  return out;
}
