/** The conformance report for a terminal or a CI log. */
import { Chalk, type ChalkInstance } from 'chalk';
import { gates, type CheckStatus } from '../conformance/check.js';
import type { SuiteReport } from '../conformance/runner.js';
import { detailLines, printable } from './_format.js';

export interface TextOptions {
  /** A chalk instance (the CLI's, which knows about NO_COLOR and TTYs) or plainly on or off. */
  color?: boolean | ChalkInstance;
  /** What would run the MUST checks that did not (the fixture fields they need). */
  skipHint?: string;
}

const LABELS: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', skip: 'SKIP', info: 'INFO', error: 'ERROR' };
/** Details sit under the ID column. */
const DETAIL_INDENT = ' '.repeat(9);

/**
 * One line per check, failures followed by what was sent, received and expected, then a summary
 * and the verdict. No trailing newline.
 */
export function renderText(report: SuiteReport, options: TextOptions = {}): string {
  const c = typeof options.color === 'function' ? options.color : new Chalk({ level: options.color ? 1 : 0 });
  const paint: Record<CheckStatus, (text: string) => string> = {
    pass: c.green, fail: c.red.bold, warn: c.yellow, skip: c.gray, info: c.cyan, error: c.magenta.bold,
  };
  const idWidth = Math.max(0, ...report.results.map((r) => r.id.length));
  const lines: string[] = [];
  for (const r of report.results) {
    const label = paint[r.status](LABELS[r.status].padEnd(5));
    lines.push(`  ${label}  ${r.id.padEnd(idWidth)}  ${r.level.padEnd(6)}  ${printable(r.title)} ${c.dim(`(${duration(r.durationMs)})`)}`);
    lines.push(...detailLines(r).map((line) => `${DETAIL_INDENT}${line}`));
  }
  lines.push('', summaryLine(report), verdictLine(report, c));
  if (report.skippedMust.length > 0 && options.skipHint) lines.push(`${DETAIL_INDENT}${options.skipHint}`);
  return lines.join('\n');
}

/** "7 checks: 2 passed, 1 failed, 1 warning, 1 skipped, 1 error (1 MUST)"; zero counts left out. */
export function summaryLine(report: SuiteReport): string {
  const s = report.summary;
  const mustErrors = report.results.filter((r) => r.status === 'error' && r.level === 'MUST').length;
  const parts = [
    `${s.pass} passed`,
    s.fail > 0 ? `${s.fail} failed` : '',
    s.warn > 0 ? plural(s.warn, 'warning') : '',
    s.skip > 0 ? `${s.skip} skipped` : '',
    s.info > 0 ? `${s.info} info` : '',
    s.error > 0 ? `${plural(s.error, 'error')}${mustErrors > 0 ? ` (${mustErrors} MUST)` : ''}` : '',
  ];
  return `${plural(s.total, 'check')}: ${parts.filter((part) => part !== '').join(', ')}`;
}

function verdictLine(report: SuiteReport, c: ChalkInstance): string {
  const suite = printable(report.suite);
  const skipped = report.skippedMust.map((r) => r.id);
  if (report.verdict === 'incomplete') {
    return `${c.yellow.bold('INCOMPLETE')}  ${suite}: no MUST check failed, but ${plural(skipped.length, 'MUST check')} did not run: ${skipped.join(', ')}`;
  }
  if (report.verdict === 'passed') {
    const accepted = skipped.length > 0 ? ` (${plural(skipped.length, 'MUST check')} did not run: ${skipped.join(', ')}; accepted by --allow-skips)` : '';
    return `${c.green.bold('PASSED')}  ${suite}: no MUST check failed${accepted}`;
  }
  const ids = report.results.filter((r) => gates(r.level, r.status)).map((r) => r.id);
  return `${c.red.bold('FAILED')}  ${suite}: ${plural(ids.length, 'MUST check')} failed or errored: ${ids.join(', ')}`;
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
