/** A finished run as numbers: the `--json` summary, and what thresholds are judged on. */
import { percentilesOf, type Percentiles } from './histogram.js';
import type { LoadResult } from './engine.js';

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
  /** Open model: from the intended send time (coordinated-omission-correct); closed: = serviceUs. */
  latencyUs: Percentiles;
  serviceUs: Percentiles;
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

export function summarize(result: LoadResult): LoadSummary {
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
    latencyUs: percentilesOf(result.model === 'open' ? result.response : result.service),
    serviceUs: percentilesOf(result.service),
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
        { requests: stats.response.totalCount, outcomes: Object.fromEntries(stats.outcomes), latencyUs: percentilesOf(stats.response) },
      ]),
    );
  }
  return summary;
}
