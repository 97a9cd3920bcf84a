/**
 * Latency histograms: HdrHistogram (constant memory, mergeable), values in microseconds from
 * 1 µs to 60 s at 3 significant digits. Microseconds, not milliseconds: autocannon's integer-ms
 * histogram prints "0 ms" medians for a fast backend (docs/load-engine.md §3.6).
 */
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

export const HIGHEST_US = 60_000_000;

export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, bitBucketSize: 32, autoResize: false });
}

/** Records a duration in microseconds, clamped into the trackable range (a 0 µs reply is 1 µs). */
export function recordUs(histogram: Histogram, microseconds: number): void {
  histogram.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(microseconds))));
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * The value at a percentile, never above the largest value recorded: HdrHistogram answers with
 * the top of a bucket, which can lie past the maximum itself.
 */
export function valueAt(histogram: Histogram, percentile: number): number {
  return Math.min(histogram.getValueAtPercentile(percentile), histogram.maxValue);
}

/** Percentiles in µs; all 0 for an empty histogram (JSON stays numeric). */
export function percentilesOf(histogram: Histogram): Percentiles {
  if (histogram.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    p50: valueAt(histogram, 50),
    p90: valueAt(histogram, 90),
    p99: valueAt(histogram, 99),
    p999: valueAt(histogram, 99.9),
    max: histogram.maxValue,
  };
}

/** The percentile curve for plots: (percentile, µs) pairs at log-spaced "nines". */
export function percentileCurve(histogram: Histogram): { percentile: number; us: number }[] {
  if (histogram.totalCount === 0) return [];
  const points: { percentile: number; us: number }[] = [];
  for (const percentile of [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100]) {
    points.push({ percentile, us: valueAt(histogram, percentile) });
  }
  return points;
}

export { hdr };
