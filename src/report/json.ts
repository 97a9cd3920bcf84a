/**
 * The conformance report for scripts. The field names are an interface: add fields, never
 * rename or remove them without raising `version`.
 *
 *   version      1
 *   suite        suite name
 *   passed       what the exit code says: no MUST check failed or errored, and every MUST check
 *                that applies ran (unless --allow-skips)
 *   verdict      passed | failed | incomplete (no MUST failed, but some did not run)
 *   startedAt    ISO 8601, UTC
 *   durationMs   whole run
 *   summary      { total, pass, fail, warn, skip, info, error, mustFailed, mustSkipped }
 *   skippedMust[] { id, needs? } MUST checks that did not run, and the inputs they needed
 *   results[]    { id, level, title, status, message?, durationMs, evidence? }, in run order
 *     evidence[] { label?, sent?, received?, expected? }: bytes as { hex }, bigints as strings;
 *                never truncated, unlike the text and JUnit reports
 */
import type { Evidence } from '../conformance/check.js';
import type { SuiteReport } from '../conformance/runner.js';
import { plainValue } from './_format.js';

export const JSON_REPORT_VERSION = 1;

/** Pretty-printed, fields in the order above, no trailing newline. */
export function renderJson(report: SuiteReport): string {
  const { total, pass, fail, warn, skip, info, error, mustFailed, mustSkipped } = report.summary;
  return JSON.stringify(
    {
      version: JSON_REPORT_VERSION,
      suite: report.suite,
      passed: report.passed,
      verdict: report.verdict,
      startedAt: report.startedAt,
      durationMs: report.durationMs,
      summary: { total, pass, fail, warn, skip, info, error, mustFailed, mustSkipped },
      skippedMust: report.skippedMust.map((r) => ({ id: r.id, needs: r.needs })),
      results: report.results.map((r) => ({
        id: r.id,
        level: r.level,
        title: r.title,
        status: r.status,
        message: r.message,
        durationMs: r.durationMs,
        evidence: r.evidence?.map(plainEvidence),
      })),
    },
    null,
    2,
  );
}

function plainEvidence(e: Evidence): object {
  return { label: e.label, sent: plainValue(e.sent), received: plainValue(e.received), expected: plainValue(e.expected) };
}
