/** `--list`: every check a suite has, without running any. */
import type { CheckInfo, CheckLevel } from '../conformance/check.js';
import { printable } from './_format.js';

/** One line per check, what it needs beneath it, then the counts by level. No trailing newline. */
export function renderCheckList(checks: readonly CheckInfo[]): string {
  const idWidth = Math.max(0, ...checks.map((check) => check.id.length));
  const lines: string[] = [];
  for (const check of checks) {
    lines.push(`${check.id.padEnd(idWidth)}  ${check.level.padEnd(6)}  ${printable(check.title)}`);
    if (check.requires?.length) lines.push(`${' '.repeat(idWidth + 10)}needs ${check.requires.join(', ')}`);
  }
  const byLevel = (['MUST', 'SHOULD', 'INFO'] satisfies CheckLevel[])
    .map((level) => [level, checks.filter((check) => check.level === level).length] as const)
    .filter(([, count]) => count > 0)
    .map(([level, count]) => `${count} ${level}`);
  lines.push('', `${checks.length} ${checks.length === 1 ? 'check' : 'checks'}${byLevel.length > 0 ? ` (${byLevel.join(', ')})` : ''}`);
  return lines.join('\n');
}
