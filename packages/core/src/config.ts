import { z } from 'zod';
import { AssuranceError } from './errors.ts';

/**
 * A boolean from an environment variable that accepts only true/false/1/0/yes/no.
 * `z.coerce.boolean()` would turn the string "false" into true (STYLE.md, trigger.dev lesson).
 */
export const envBoolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'TRUE', 'FALSE'])
  .transform((v) => ['true', '1', 'yes', 'TRUE'].includes(v));

/** A comma-separated list, trimmed, empty items dropped. */
export const envList = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
);

/** A duration such as `250ms`, `30s`, `10m`, `72h`, `14d`, parsed to milliseconds. */
export const envDuration = z.string().transform((s, ctx) => {
  const ms = parseDuration(s);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like 500ms, 30s, 10m, 72h or 14d, got "${s}"`,
    });
    return z.NEVER;
  }
  return ms;
});

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(s: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s.trim());
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/**
 * Parses a process's environment once against its schema. Every problem is reported at once,
 * one line per variable, so a misconfigured deployment fails at start with a readable message.
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new AssuranceError('config_invalid', `invalid configuration:\n${lines.join('\n')}`);
}
