/** The per-interval time series of a run: CSV rows (`--csv`) and the HTML report's charts. */
import { percentilesOf } from '../load/histogram.js';
import type { Interval } from '../load/engine.js';

export interface IntervalRow {
  /** Seconds from the start of the measured part (the interval's end). */
  t: number;
  targetRate: number;
  achievedRate: number;
  requests: number;
  errors: number;
  dropped: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  serviceP99Us: number;
}

export function rowOf(interval: Interval): IntervalRow {
  const seconds = Math.max(0.001, (interval.endMs - interval.startMs) / 1000);
  const response = percentilesOf(interval.response);
  return {
    t: Math.round(interval.endMs) / 1000,
    targetRate: Math.round(interval.targetRate * 10) / 10,
    achievedRate: Math.round((interval.requests / seconds) * 10) / 10,
    requests: interval.requests,
    errors: interval.errors,
    dropped: interval.dropped,
    p50Us: response.p50,
    p99Us: response.p99,
    maxUs: response.max,
    serviceP99Us: percentilesOf(interval.service).p99,
  };
}

export const CSV_HEADER = 't_s,target_rate,achieved_rate,requests,errors,dropped,p50_us,p99_us,max_us,service_p99_us';

export function csvLine(row: IntervalRow): string {
  return [row.t, row.targetRate, row.achievedRate, row.requests, row.errors, row.dropped, row.p50Us, row.p99Us, row.maxUs, row.serviceP99Us].join(',');
}
