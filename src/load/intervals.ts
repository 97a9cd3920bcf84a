/**
 * The per-interval series of a run, cut on the wall clock (docs/load-engine.md §4): every interval
 * ends on a whole multiple of the interval length of the wall clock, found from the clock each time
 * (never from timers added up, which drift), so the logs of generators started apart line up second
 * for second. The first interval starts when measuring starts and the last ends with the run: either
 * may be shorter than the others, and says so (`partial`) with its true length. Requests still
 * finishing after the end (the drain) land in the last interval instead of a stray extra row.
 */
import { newHistogram, type Histogram } from './histogram.js';

export interface Interval {
  /** ms from the start of the measured part. */
  startMs: number;
  endMs: number;
  /** The wall clock (ms since the epoch) at startMs. */
  startEpochMs: number;
  /** Shorter than the interval length: the run's first or last. Rates are over its true length. */
  partial: boolean;
  targetRate: number;
  requests: number;
  errors: number;
  dropped: number;
  response: Histogram;
  service: Histogram;
}

function newInterval(startMs: number, startEpochMs: number): Interval {
  return {
    startMs, endMs: startMs, startEpochMs, partial: false, targetRate: 0, requests: 0, errors: 0, dropped: 0,
    response: newHistogram(), service: newHistogram(),
  };
}

export interface IntervalClockOptions {
  /** The wall clock at the measured start, ms since the epoch. */
  epochAtStartMs: number;
  intervalMs: number;
  /** Where the measured part is planned to end (ms from its start): no interval is opened past it. */
  plannedEndMs: number;
  /** The schedule's rate at a time (ms from the measured start), for the interval's target rate. */
  targetRateAt: (ms: number) => number;
  emit: (interval: Interval) => void;
}

export class IntervalClock {
  current: Interval;
  /** Where the current interval ends (ms from the measured start); Infinity once the run has ended. */
  nextEndMs: number;
  private endedAtMs: number | undefined;

  constructor(private readonly options: IntervalClockOptions) {
    this.current = newInterval(0, options.epochAtStartMs);
    this.nextEndMs = this.endAfter(0);
  }

  /** Closes every interval that ended by `nowMs` (ms from the measured start). */
  advance(nowMs: number): void {
    while (nowMs >= this.nextEndMs) {
      const end = this.nextEndMs;
      this.close(end);
      this.current = newInterval(end, this.options.epochAtStartMs + end);
      this.nextEndMs = this.endAfter(end);
    }
  }

  /** The measured part ended at `endMs`: intervals up to it close; the last stays open for the drain. */
  stop(endMs: number): void {
    if (this.endedAtMs !== undefined) return;
    // A run that ends on a boundary keeps that interval open for the drain, not a new empty one.
    this.advance(endMs - 1e-6);
    this.endedAtMs = endMs;
    this.nextEndMs = Infinity;
  }

  /** Emits the last interval, with the measured part's end as its end. */
  finish(): void {
    const end = this.endedAtMs ?? this.current.startMs;
    const last = this.current;
    if (end > last.startMs || last.requests > 0 || last.dropped > 0) this.close(end);
  }

  private close(endMs: number): void {
    const interval = this.current;
    interval.endMs = endMs;
    const nominalStart = this.boundaryAfter(interval.startMs) - this.options.intervalMs;
    interval.partial = interval.startMs > nominalStart + 1e-6 || endMs < this.boundaryAfter(interval.startMs) - 1e-6;
    interval.targetRate = this.options.targetRateAt((interval.startMs + endMs) / 2);
    this.options.emit(interval);
  }

  /** Where an interval that starts at `ms` ends, unless that is the run's planned end (Infinity: the run's end closes it). */
  private endAfter(ms: number): number {
    const end = this.boundaryAfter(ms);
    return end < this.options.plannedEndMs - 1e-6 ? end : Infinity;
  }

  /** The first wall-clock boundary strictly after `ms` (ms from the measured start). */
  private boundaryAfter(ms: number): number {
    const { epochAtStartMs, intervalMs } = this.options;
    const epoch = epochAtStartMs + ms;
    return (Math.floor(epoch / intervalMs + 1e-9) + 1) * intervalMs - epochAtStartMs;
  }
}
