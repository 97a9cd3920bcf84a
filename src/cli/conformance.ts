/** The conformance flags every "plays the proxy" command shares: --list, --only, --junit, --json. */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { describeSocketError } from '../shared/net-errors.js';
import { listChecks, parseOnly, runSuite, type SuiteReport } from '../conformance/runner.js';
import type { Suite } from '../conformance/check.js';
import { renderCheckList } from '../report/list.js';
import { renderJson } from '../report/json.js';
import { renderJunit } from '../report/junit.js';
import { renderText } from '../report/text.js';
import { describeFsError, InputError } from '../shared/errors.js';
import { EXIT_FAILED, EXIT_OK, log, out, stdoutColors } from './io.js';

export interface ConformanceFlags {
  conformance?: boolean;
  fixture?: string;
  list?: boolean;
  only?: string;
  junit?: string;
  json?: boolean;
  allowSkips?: boolean;
}

/** The flags every conformance suite shares: they belong to conformance mode only. */
export const CONFORMANCE_FLAGS = ['--conformance', '--fixture', '--list', '--only', '--junit', '--allow-skips'] as const;

export interface SuiteRunOptions {
  has: Set<string>;
  /** Capabilities whose absence means "does not apply here", not "an input is missing". */
  inapplicable?: (capability: string) => boolean;
  timeoutMs?: number;
  cleanup?: () => Promise<void>;
}

/**
 * What would run the skipped MUST checks: the fixture fields behind `fixture.*` capabilities,
 * and any other input by name.
 */
export function skipHint(report: SuiteReport): string | undefined {
  const needs = new Set(report.skippedMust.flatMap((r) => r.needs ?? []));
  const fields = [...needs].filter((n) => n.startsWith('fixture.')).map((n) => n.slice('fixture.'.length).replace(/\.two$/, ' (two entries)'));
  const other = [...needs].filter((n) => !n.startsWith('fixture.'));
  const gaveUp = report.skippedMust.filter((r) => !r.needs).map((r) => r.id);
  const parts = [
    fields.length > 0 ? `a --fixture with ${[...new Set(fields)].join(', ')} would run them` : '',
    other.length > 0 ? `they also need ${other.join(', ')}` : '',
    gaveUp.length > 0 ? `${gaveUp.join(', ')} skipped themselves (see above)` : '',
  ].filter((p) => p !== '');
  return report.skippedMust.length === 0 ? undefined : `${parts.join('; ')}${report.allowSkips ? '' : '; --allow-skips accepts the run as it is'}`;
}

export function listSuite<C>(suite: Suite<C>): number {
  out(renderCheckList(listChecks(suite)));
  return EXIT_OK;
}

/** Runs the suite, writes the JUnit file if asked, prints the report; exit 1 if a MUST check failed. */
export async function runSuiteCli<C>(suite: Suite<C>, ctx: C, flags: ConformanceFlags, options: SuiteRunOptions): Promise<number> {
  const only = flags.only === undefined ? undefined : parseOnly(flags.only, suite);
  let report: SuiteReport;
  try {
    report = await runSuite(suite, ctx, {
      only, timeoutMs: options.timeoutMs, has: (capability) => options.has.has(capability),
      inapplicable: options.inapplicable, allowSkips: flags.allowSkips,
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
  const hint = skipHint(report);
  if (flags.json && hint) log(hint);
  out(flags.json ? renderJson(report) : renderText(report, { color: stdoutColors(), skipHint: hint }));
  return report.passed ? EXIT_OK : EXIT_FAILED;
}

/**
 * A backend that cannot be reached fails the run before any check: no check may report on a
 * reply that never came. `what` names the target in the one line printed.
 */
export async function reachOrFail(what: string, connect: net.NetConnectOpts, timeoutMs = 5000): Promise<number | undefined> {
  const reason = await new Promise<string | undefined>((resolve) => {
    const socket = net.connect(connect);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`no connection within ${timeoutMs / 1000} s`);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(describeSocketError(error));
    });
  });
  if (reason === undefined) return undefined;
  log(`authkit: cannot reach ${what}: ${reason}`);
  return EXIT_FAILED;
}
