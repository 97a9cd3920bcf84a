/**
 * Runs a suite against a backend: one check at a time in suite order, each under a timeout, and
 * no check can crash the run. Printing is left to the reporters in src/report/.
 */
import { inspect } from 'node:util';
import { InputError } from '../shared/errors.js';
import {
  gates,
  statusOf,
  type Check,
  type CheckInfo,
  type CheckLevel,
  type CheckOutcome,
  type CheckStatus,
  type CheckTools,
  type Evidence,
  type OutcomeStatus,
  type Suite,
} from './check.js';
import { indexById, infoOf, resolveIds } from './select.js';

export { listChecks, parseOnly } from './select.js';

export const DEFAULT_TIMEOUT_MS = 30_000;

export interface RunOptions {
  /** IDs to run, as parseOnly returns them; the other checks are left out of the report. */
  only?: readonly string[];
  /** Per check, default 30 s; Infinity for none. A check that overruns is an `error`. */
  timeoutMs?: number;
  /** Whether this run has a capability; without it every check with `requires` is skipped. */
  has?: (capability: string) => boolean;
  /**
   * Capabilities whose absence means a check does not apply to this target (another dialect, no
   * secret configured), rather than that an input is missing: a check skipped for want of one
   * leaves the run complete.
   */
  inapplicable?: (capability: string) => boolean;
  /** A MUST check that did not run leaves the run `incomplete` unless this is set. */
  allowSkips?: boolean;
  /** Live progress: a check starting, and its result. */
  onStart?: (check: CheckInfo) => void;
  onResult?: (result: CheckResult) => void;
}

export interface CheckResult {
  id: string;
  level: CheckLevel;
  title: string;
  status: CheckStatus;
  message?: string;
  evidence?: Evidence[];
  durationMs: number;
  /** Skipped for want of these capabilities. */
  needs?: string[];
}

/**
 * Counts by status; `mustFailed` counts MUST checks that failed or errored, `mustSkipped` MUST
 * checks that did not run although they apply (an input was missing, or the check gave up).
 */
export interface Summary extends Record<CheckStatus, number> {
  total: number;
  mustFailed: number;
  mustSkipped: number;
}

/** passed: every MUST check ran and passed; incomplete: none failed, but some did not run. */
export type SuiteVerdict = 'passed' | 'failed' | 'incomplete';

export interface SuiteReport {
  suite: string;
  /** ISO 8601, UTC. */
  startedAt: string;
  durationMs: number;
  results: CheckResult[];
  summary: Summary;
  verdict: SuiteVerdict;
  /** What the exit code says: no MUST check failed, and none was skipped unless skips are allowed. */
  passed: boolean;
  /** MUST checks that did not run (listed even when skips are allowed). */
  skippedMust: CheckResult[];
  allowSkips: boolean;
}

export async function runSuite<C>(suite: Suite<C>, ctx: C, options: RunOptions = {}): Promise<SuiteReport> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new InputError(`the check timeout must be a positive number of milliseconds, not ${timeoutMs}`);
  indexById(suite);
  const selected = options.only === undefined ? undefined : new Set(resolveIds(options.only, suite));
  const has = options.has ?? (() => false);
  const startedAt = new Date().toISOString();
  const start = performance.now();
  const results: CheckResult[] = [];
  for (const check of suite.checks) {
    if (selected && !selected.has(check.id)) continue;
    options.onStart?.(infoOf(check));
    const result = await runCheck(check, ctx, timeoutMs, has);
    results.push(result);
    options.onResult?.(result);
  }
  const inapplicable = options.inapplicable ?? (() => false);
  const skippedMust = results.filter((r) => r.level === 'MUST' && r.status === 'skip' && !r.needs?.some(inapplicable));
  const summary = { ...summarize(results), mustSkipped: skippedMust.length };
  const allowSkips = options.allowSkips ?? false;
  const verdict: SuiteVerdict = summary.mustFailed > 0 ? 'failed' : skippedMust.length > 0 && !allowSkips ? 'incomplete' : 'passed';
  return { suite: suite.name, startedAt, durationMs: since(start), results, summary, verdict, passed: verdict === 'passed', skippedMust, allowSkips };
}

const TIMED_OUT = Symbol('timed out');
/** setTimeout fires at once for longer delays, so those mean "no timeout". */
const MAX_TIMER_MS = 2 ** 31 - 1;
const OUTCOMES = new Set<string>(['pass', 'fail', 'warn', 'skip', 'info'] satisfies OutcomeStatus[]);

async function runCheck<C>(check: Check<C>, ctx: C, timeoutMs: number, has: (capability: string) => boolean): Promise<CheckResult> {
  const info = { id: check.id, level: check.level, title: check.title };
  const missing = (check.requires ?? []).filter((capability) => !has(capability));
  if (missing.length > 0) return { ...info, status: 'skip', message: `needs ${missing.join(', ')}`, durationMs: 0, needs: missing };

  const controller = new AbortController();
  const recorded: Evidence[] = [];
  const tools = toolsFor(controller.signal, recorded);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    if (timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => reject(TIMED_OUT), timeoutMs);
  });
  const start = performance.now();
  let status: CheckStatus;
  let message: string | undefined;
  let evidence: Evidence[];
  try {
    // Through a promise, so a check that throws before its first await is caught the same way.
    const outcome = (await Promise.race([Promise.resolve().then(() => check.run(ctx, tools)), deadline])) ?? tools.pass();
    if (!OUTCOMES.has(outcome.status)) throw new Error(`the check returned an unknown status ${inspect(outcome.status)}`);
    status = statusOf(check.level, outcome.status);
    message = outcome.message;
    evidence = [...recorded, ...(outcome.evidence ?? [])];
  } catch (error) {
    const timedOut = `timed out after ${timeoutMs} ms`;
    // The reason fetch and undici reject with, as for AbortSignal.timeout().
    if (error === TIMED_OUT) controller.abort(new DOMException(timedOut, 'TimeoutError'));
    status = 'error';
    message = error === TIMED_OUT ? timedOut : describeThrown(error);
    evidence = [...recorded];
  } finally {
    clearTimeout(timer);
  }
  return {
    ...info,
    status,
    ...(message === undefined ? {} : { message }),
    ...(evidence.length === 0 ? {} : { evidence }),
    durationMs: since(start),
  };
}

function toolsFor(signal: AbortSignal, recorded: Evidence[]): CheckTools {
  const withEvidence = (outcome: CheckOutcome, evidence: Evidence | undefined): CheckOutcome =>
    evidence === undefined ? outcome : { ...outcome, evidence: [evidence] };
  return {
    signal,
    evidence: (e) => void recorded.push(e),
    pass: (message) => (message === undefined ? { status: 'pass' } : { status: 'pass', message }),
    fail: (message, evidence) => withEvidence({ status: 'fail', message }, evidence),
    warn: (message, evidence) => withEvidence({ status: 'warn', message }, evidence),
    skip: (reason) => ({ status: 'skip', message: reason }),
    info: (message) => ({ status: 'info', message }),
  };
}

/** One line a user can act on; a failed fetch says why through its `cause`. */
function describeThrown(error: unknown): string {
  if (error instanceof InputError) return error.message;
  if (!(error instanceof Error)) return `threw ${inspect(error, { depth: 2, breakLength: Infinity })}`;
  let text = `${error.name}: ${error.message}`;
  let cause = error.cause;
  for (let depth = 0; cause !== undefined && depth < 3; depth++) {
    text += ` (cause: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)})`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}

function summarize(results: readonly CheckResult[]): Omit<Summary, 'mustSkipped'> {
  const summary = { total: results.length, pass: 0, fail: 0, warn: 0, skip: 0, info: 0, error: 0, mustFailed: 0 };
  for (const result of results) {
    summary[result.status] += 1;
    if (gates(result.level, result.status)) summary.mustFailed += 1;
  }
  return summary;
}

function since(start: number): number {
  return Math.round(performance.now() - start);
}
