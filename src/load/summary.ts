/** A finished run as numbers: the `--json` summary, and what thresholds are judged on. */
import { DEFAULT_PERCENTILES, newHistogram, percentilesOf, type Percentiles } from './histogram.js';
import type { LoadResult } from './run-types.js';

export interface LoadSummary {
  model: 'open' | 'closed';
  /** Open model: the arrival rate the schedule called for over the measured part; closed: null. */
  targetRate: number | null;
  achievedRate: number;
  durationS: number;
  requests: number;
  dropped: number;
  errors: number;
  errorRate: number;
  unfinished: number;
  outcomes: Record<string, number>;
  /**
   * The headline: replies that are answers (every class the target does not count as an error),
   * from the intended send time (coordinated-omission-correct; closed model: from the send). Fast
   * errors would pull it down, so they are apart, as k6's expected_response does.
   */
  latencyUs: Percentiles;
  /** Every reply, answers and errors alike. */
  latencyUsAll: Percentiles;
  /** Per outcome class, from the intended send time. */
  latencyUsByClass: Record<string, Percentiles>;
  /** Every reply, from the actual send. */
  serviceUs: Percentiles;
  /** The percentiles asked with --percentiles (the text report's columns). */
  percentiles: number[];
  schedulerLatenessUs: { p50: number; p99: number };
  clientCpuUsPerRequest: number;
  /** The generator's CPU as % of one core; above 90 % the figures may be the generator's limit. */
  clientCpuPercent: number;
  generatorBound: boolean;
  interrupted: boolean;
  /** Per operation kind (the Xray event mix): outcomes and latency from the intended time. */
  kinds?: Record<string, { requests: number; outcomes: Record<string, number>; latencyUs: Percentiles }>;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** `percentiles`: the spectrum to print (--percentiles); `alsoNeeded`: percentiles the thresholds read. */
export function summarize(result: LoadResult, percentiles: readonly number[] = DEFAULT_PERCENTILES, alsoNeeded: readonly number[] = []): LoadSummary {
  const extra = [...new Set([...percentiles, ...alsoNeeded])].filter((p) => !DEFAULT_PERCENTILES.includes(p));
  const answers = newHistogram();
  for (const [outcome, histogram] of result.byClass) if (!result.errorClasses.has(outcome)) answers.add(histogram);
  // Logs merged from an older authkit carry no classes: their headline stays every reply.
  if (result.byClass.size === 0) answers.add(result.model === 'open' ? result.response : result.service);
  const seconds = result.durationMs / 1000;
  const lateness = percentilesOf(result.lateness);
  const cpuPercent = result.peakCpuPercent ?? (result.durationMs > 0 ? (result.cpuUs / 1000 / result.durationMs) * 100 : 0);
  const summary: LoadSummary = {
    model: result.model,
    // The rate asked (a run cut short by --requests still asked for it); merged logs know only their counts.
    targetRate: result.model === 'open' ? round(result.targetRate ?? (seconds > 0 ? result.scheduled / seconds : 0)) : null,
    achievedRate: seconds > 0 ? round(result.requests / seconds) : 0,
    durationS: round(seconds, 3),
    requests: result.requests,
    dropped: result.dropped,
    errors: result.errors,
    // Requests still without a reply when the run ended count as failed.
    errorRate: result.requests + result.unfinished > 0 ? (result.errors + result.unfinished) / (result.requests + result.unfinished) : 0,
    unfinished: result.unfinished,
    outcomes: Object.fromEntries([...result.outcomes].sort(([a], [b]) => a.localeCompare(b))),
    latencyUs: percentilesOf(answers, extra),
    latencyUsAll: percentilesOf(result.model === 'open' ? result.response : result.service, extra),
    latencyUsByClass: Object.fromEntries([...result.byClass].sort(([a], [b]) => a.localeCompare(b)).map(([outcome, h]) => [outcome, percentilesOf(h, extra)])),
    serviceUs: percentilesOf(result.service, extra),
    percentiles: [...percentiles],
    schedulerLatenessUs: { p50: lateness.p50, p99: lateness.p99 },
    clientCpuUsPerRequest: result.requests > 0 ? round(result.cpuUs / result.requests, 2) : 0,
    clientCpuPercent: round(cpuPercent),
    generatorBound: cpuPercent > 90,
    interrupted: result.interrupted,
  };
  if (result.kinds.size > 0) {
    summary.kinds = Object.fromEntries(
      [...result.kinds].map(([kind, stats]) => [
        kind,
        { requests: stats.response.totalCount, outcomes: Object.fromEntries(stats.outcomes), latencyUs: percentilesOf(stats.response, extra) },
      ]),
    );
  }
  return summary;
}
