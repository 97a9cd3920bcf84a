/** The per-interval time series of a run: CSV rows (`--csv`) and the HTML report's charts. */
import { valueOrZero as at } from '../load/histogram.js';
import type { Interval } from '../load/intervals.js';

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
  /** The interval's true length, s: a partial first or last interval is shorter, and its rates are over this. */
  seconds: number;
  /** The wall clock at the interval's start, s since the epoch. */
  startEpochS: number;
}

export function rowOf(interval: Interval): IntervalRow {
  const seconds = Math.max(0.001, (interval.endMs - interval.startMs) / 1000);
  return {
    t: Math.round(interval.endMs) / 1000,
    targetRate: Math.round(interval.targetRate * 10) / 10,
    achievedRate: Math.round((interval.requests / seconds) * 10) / 10,
    requests: interval.requests,
    errors: interval.errors,
    dropped: interval.dropped,
    p50Us: at(interval.response, 50),
    p99Us: at(interval.response, 99),
    maxUs: interval.response.totalCount > 0 ? interval.response.maxValue : 0,
    serviceP99Us: at(interval.service, 99),
    seconds: Math.round(interval.endMs - interval.startMs) / 1000,
    startEpochS: Math.round(interval.startEpochMs) / 1000,
  };
}

export const CSV_HEADER = 't_s,target_rate,achieved_rate,requests,errors,dropped,p50_us,p99_us,max_us,service_p99_us,length_s,start_epoch_s';

export function csvLine(row: IntervalRow): string {
  return [row.t, row.targetRate, row.achievedRate, row.requests, row.errors, row.dropped, row.p50Us, row.p99Us, row.maxUs, row.serviceP99Us, row.seconds, row.startEpochS].join(',');
}
