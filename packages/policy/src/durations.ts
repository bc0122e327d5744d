/**
 * Plain YAML durations (`90s`, `10m`, `72h`, `14d`, `2w`). One number and one unit, nothing else:
 * a policy reviewer should read a lifetime at a glance, and `1h30m` style compounds invite mistakes.
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
type Unit = keyof typeof UNIT_MS;

const DURATION = /^(\d{1,9})(ms|s|m|h|d|w)$/;

/** Parses a duration such as `14d` into milliseconds; returns `undefined` if it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match) return undefined;
  const [, amount, unit] = match;
  return Number(amount) * UNIT_MS[unit as Unit];
}

/** Formats milliseconds with the largest unit that divides them exactly (`1209600000` → `14d`). */
export function formatDuration(ms: number): string {
  const units: Unit[] = ['w', 'd', 'h', 'm', 's'];
  for (const unit of units) {
    if (ms > 0 && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
