/** The conformance flags every "plays the proxy" command shares: --list, --only, --junit, --json. */
import { writeFileSync } from 'node:fs';
import { listChecks, parseOnly, runSuite, type SuiteReport } from '../conformance/runner.js';
import type { Suite } from '../conformance/check.js';
import { renderCheckList } from '../report/list.js';
import { renderJson } from '../report/json.js';
import { renderJunit } from '../report/junit.js';
import { renderText } from '../report/text.js';
import { describeFsError, InputError } from '../errors.js';
import { EXIT_FAILED, EXIT_OK, log, out, stdoutColors } from './io.js';

export interface ConformanceFlags {
  list?: boolean;
  only?: string;
  junit?: string;
  json?: boolean;
}

export function listSuite<C>(suite: Suite<C>): number {
  out(renderCheckList(listChecks(suite)));
  return EXIT_OK;
}

/** Runs the suite, writes the JUnit file if asked, prints the report; exit 1 if a MUST check failed. */
export async function runSuiteCli<C>(
  suite: Suite<C>, ctx: C, flags: ConformanceFlags, options: { has: Set<string>; timeoutMs?: number; cleanup?: () => Promise<void> },
): Promise<number> {
  const only = flags.only === undefined ? undefined : parseOnly(flags.only, suite);
  let report: SuiteReport;
  try {
    report = await runSuite(suite, ctx, {
      only, timeoutMs: options.timeoutMs, has: (capability) => options.has.has(capability),
      onStart: (check) => log(`running ${check.id} ${check.title}`),
    });
  } finally {
    await options.cleanup?.();
  }
  if (flags.junit !== undefined) {
    try {
      writeFileSync(flags.junit, renderJunit(report));
    } catch (error) {
      throw new InputError(`--junit ${flags.junit}: ${describeFsError(error)}`);
    }
    log(`wrote the JUnit report to ${flags.junit}`);
  }
  out(flags.json ? renderJson(report) : renderText(report, { color: stdoutColors() }));
  return report.passed ? EXIT_OK : EXIT_FAILED;
}
