/**
 * Latency histograms: HdrHistogram (constant memory, mergeable), values in microseconds from
 * 1 µs to 60 s at 3 significant digits. Microseconds, not milliseconds: autocannon's integer-ms
 * histogram prints "0 ms" medians for a fast backend (docs/load-engine.md §3.6).
 */
import { createRequire } from 'node:module';
import type * as Hdr from 'hdr-histogram-js';

export type Histogram = Hdr.Histogram;

export const HIGHEST_US = 60_000_000;

/*
 * The package's index loads its log writer (which builds an Intl number format at import), the
 * compressed encoding (pako, base64) and the WebAssembly build: some 80 ms of CPU at every start
 * of the CLI, which a short load run pays per request. The engine needs only the Int32 histogram,
 * loaded alone; the rest loads the first time `hdr` is used (--hdr-log, report merge).
 */
const require = createRequire(import.meta.url);
const { default: Int32Histogram } = require('hdr-histogram-js/dist/Int32Histogram.js') as typeof import('hdr-histogram-js/dist/Int32Histogram.js');
let whole: typeof Hdr | undefined;
export const hdr: typeof Hdr = new Proxy({} as typeof Hdr, {
  get: (_, name) => (whole ??= require('hdr-histogram-js') as typeof Hdr)[name as keyof typeof Hdr],
});

/** What hdr.build({ bitBucketSize: 32, autoResize: false }) makes, without loading the builder. */
export function newHistogram(): Histogram {
  return new Int32Histogram(1, HIGHEST_US, 3);
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
  min: number;
  mean: number;
  /** Standard deviation. */
  stddev: number;
  /** Any further percentile asked with --percentiles, under its key (`p99.99` as `p9999`). */
  [percentile: string]: number;
}

/** The spectrum printed by default (--percentiles). */
export const DEFAULT_PERCENTILES: readonly number[] = [50, 90, 99, 99.9];

/** `99.9` -> `p999`, `99.99` -> `p9999`, `50` -> `p50`: the key of a percentile in --json. */
export function percentileKey(percentile: number): string {
  return `p${String(percentile).replace('.', '')}`;
}

/**
 * The value at a percentile, never above the largest value recorded: HdrHistogram answers with
 * the top of a bucket, which can lie past the maximum itself.
 */
export function valueAt(histogram: Histogram, percentile: number): number {
  return Math.min(histogram.getValueAtPercentile(percentile), histogram.maxValue);
}

/** The value at a percentile, 0 for an empty histogram: one figure, without walking every bucket as a summary does. */
export function valueOrZero(histogram: Histogram, percentile: number): number {
  return histogram.totalCount > 0 ? valueAt(histogram, percentile) : 0;
}

/** The parts of the package's histogram class that a walk over its buckets reads. */
interface Buckets {
  countsArrayLength: number;
  getCountAtIndex(index: number): number;
  valueFromIndex(index: number): number;
  medianEquivalentValue(value: number): number;
}

/**
 * The package's `mean` and `stdDeviation`, to the last bit (the same values, each bucket's middle,
 * summed in the same order), in two plain loops over the counts (the deviations need the mean
 * first). The package's getters step its iterator object through every bucket, each getter
 * again: about 30 ms of a run's CPU for a summary's five histograms, which a load run's client
 * CPU per request pays (issue 16). 0 and 0 for an empty histogram.
 */
export function meanAndStddev(histogram: Histogram): { mean: number; stddev: number } {
  if (histogram.totalCount === 0) return { mean: 0, stddev: 0 };
  const buckets = histogram as unknown as Buckets;
  const middle = (i: number): number => buckets.medianEquivalentValue(buckets.valueFromIndex(i));
  let total = 0;
  for (let i = 0; i < buckets.countsArrayLength; i++) {
    const count = buckets.getCountAtIndex(i);
    if (count !== 0) total += middle(i) * count;
  }
  const mean = total / histogram.totalCount;
  let squares = 0;
  for (let i = 0; i < buckets.countsArrayLength; i++) {
    const count = buckets.getCountAtIndex(i);
    if (count === 0) continue;
    const deviation = middle(i) - mean;
    squares += deviation * deviation * count;
  }
  return { mean, stddev: Math.sqrt(squares / histogram.totalCount) };
}

/**
 * Percentiles in µs (the default four and any `extra`), min, mean, stddev and max; all 0 for an
 * empty histogram (JSON stays numeric). Mean and stddev walk every bucket (~17,000): for
 * summaries, never per interval on the engine's thread.
 */
export function percentilesOf(histogram: Histogram, extra: readonly number[] = []): Percentiles {
  const empty = histogram.totalCount === 0;
  const at = (percentile: number): number => valueOrZero(histogram, percentile);
  const { mean, stddev } = meanAndStddev(histogram);
  const result: Percentiles = {
    p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: empty ? 0 : histogram.maxValue,
    min: empty ? 0 : Math.min(histogram.minNonZeroValue, histogram.maxValue),
    mean: Math.round(mean * 10) / 10,
    stddev: Math.round(stddev * 10) / 10,
  };
  for (const percentile of extra) result[percentileKey(percentile)] = at(percentile);
  return result;
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

