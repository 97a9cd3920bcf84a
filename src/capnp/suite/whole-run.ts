/**
 * C07 and C15 judge everything the run saw, so they come last: every reply within Proksi's
 * timeout_ms (docs/proksi-external-auth.md §3), and responseBody, which Proksi never reads (§5).
 */
import type { Check } from '../../conformance/check.js';
import { BASE, call, type CapnpSuiteContext } from './context.js';

export const wholeRunChecks: Check<CapnpSuiteContext>[] = [
  {
    id: 'C07', level: 'MUST',
    title: 'every reply in this run came within timeout_ms (Proksi would apply on_error otherwise)',
    async run(ctx, t) {
      if (ctx.latencies.length === 0) await call(ctx, BASE);
      const slowest = Math.max(0, ...ctx.latencies);
      if (slowest >= ctx.options.timeoutMs) return t.fail(`the slowest of ${ctx.latencies.length} replies took ${slowest} ms, timeout_ms is ${ctx.options.timeoutMs}`);
      return t.pass(`slowest of ${ctx.latencies.length} replies: ${slowest} ms`);
    },
  },
  {
    id: 'C15', level: 'INFO',
    title: 'responseBody is never read by Proksi',
    async run(ctx, t) {
      const withBody = ctx.decisions.filter((d) => d.responseBody !== '').length;
      return t.info(withBody === 0 ? 'no decision set responseBody' : `${withBody} decisions set responseBody, which Proksi ignores`);
    },
  },
];
