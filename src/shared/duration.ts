/**
 * The one parser for every time flag: a duration with a unit (`500ms`, `2s`, `1.5m`, `1h`), or a
 * bare number in the flag's own unit, so the numbers each flag took before keep working.
 */
import { InputError } from './errors.js';

const MS_PER: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export type TimeUnit = 'ms' | 's';

/**
 * `text` as a number of `unit`s (fractions allowed), within [min, max] of that unit; an
 * InputError naming `flag` otherwise.
 */
export function parseTime(text: string, flag: string, unit: TimeUnit, range: { min?: number; max?: number } = {}): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$/.exec(text);
  const min = range.min ?? 0;
  const max = range.max ?? (unit === 's' ? 86_400 : 86_400_000);
  const value = match ? (Number(match[1]) * MS_PER[match[2] ?? unit]!) / MS_PER[unit]! : NaN;
  if (!(value >= min && value <= max)) {
    // A flag with no real upper bound (a load run's --duration) says only what it takes.
    const bounds = max < Number.MAX_SAFE_INTEGER ? ` from ${format(min, unit)} to ${format(max, unit)}` : '';
    throw new InputError(`${flag}: expected a duration like 500ms, 2s or 1m (a bare number is ${unit === 's' ? 'seconds' : 'milliseconds'})${bounds}, got "${text}"`);
  }
  return value;
}

function format(value: number, unit: TimeUnit): string {
  return `${value}${unit}`;
}
