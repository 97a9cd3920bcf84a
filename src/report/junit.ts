/**
 * The conformance report as JUnit XML, for CI test reporters (GitHub Actions reporters, GitLab,
 * Jenkins). It must agree with the exit code, so only what gates the run (a MUST check failing
 * or erroring) becomes <failure> or <error>:
 *
 *   pass, info, warn   a passed testcase; the message (and a warning's evidence) in <system-out>
 *   fail               <failure>
 *   error, MUST        <error>
 *   error, otherwise   <skipped> (no verdict was reached) with the details in <system-err>
 *   skip               <skipped>
 */
import { gates } from '../conformance/check.js';
import type { CheckResult, SuiteReport } from '../conformance/runner.js';
import { detailLines, printable, truncate, VALUE_LIMIT } from './_format.js';

/** No trailing newline. */
export function renderJunit(report: SuiteReport): string {
  const counts = {
    tests: report.results.length,
    failures: report.results.filter((r) => r.status === 'fail').length,
    errors: report.results.filter((r) => r.status === 'error' && gates(r.level, r.status)).length,
    skipped: report.results.filter((r) => r.status === 'skip' || (r.status === 'error' && !gates(r.level, r.status))).length,
    time: seconds(report.durationMs),
  };
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites ${attributes({ name: report.suite, ...counts })}>`,
    // Jenkins' schema wants the timestamp without a zone; startedAt is UTC.
    `  <testsuite ${attributes({ name: report.suite, ...counts, timestamp: report.startedAt.slice(0, 19) })}>`,
    ...report.results.flatMap((r) => testcase(report.suite, r).map((line) => `    ${line}`)),
    '  </testsuite>',
    '</testsuites>',
  ].join('\n');
}

function testcase(suite: string, r: CheckResult): string[] {
  const open = `<testcase ${attributes({ classname: `${suite}.${r.level}`, name: `${r.id} ${r.title}`, time: seconds(r.durationMs) })}`;
  const details = text(detailLines(r).join('\n'));
  const message = truncate(r.message ?? r.status, VALUE_LIMIT);
  switch (r.status) {
    case 'pass':
    case 'info':
    case 'warn': {
      if (details === '') return [`${open}/>`];
      const prefix = r.status === 'pass' ? '' : `${r.status.toUpperCase()}: `;
      return [`${open}>`, `  <system-out>${text(prefix)}${details}</system-out>`, '</testcase>'];
    }
    case 'fail':
      return [`${open}>`, `  <failure ${attributes({ message, type: r.level })}>${details}</failure>`, '</testcase>'];
    case 'error':
      if (gates(r.level, r.status)) return [`${open}>`, `  <error ${attributes({ message, type: 'error' })}>${details}</error>`, '</testcase>'];
      return [
        `${open}>`,
        `  <skipped ${attributes({ message: `error in a ${r.level} check, which does not gate: ${message}` })}/>`,
        `  <system-err>${details}</system-err>`,
        '</testcase>',
      ];
    case 'skip':
      return [`${open}>`, `  <skipped ${attributes({ message })}/>`, '</testcase>'];
  }
}

/** Characters XML 1.0 cannot carry at all, even escaped: most C0 controls, lone surrogates, U+FFFE/F. */
const NOT_XML = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

function text(value: string): string {
  return value.replace(NOT_XML, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Whitespace as character references, or a parser would turn newlines into spaces. */
function attributes(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([key, value]) => {
      const escaped = text(printable(String(value)))
        .replace(/"/g, '&quot;')
        .replace(/'/g, '&apos;')
        .replace(/\t/g, '&#9;')
        .replace(/\n/g, '&#10;')
        .replace(/\r/g, '&#13;');
      return `${key}="${escaped}"`;
    })
    .join(' ');
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}
