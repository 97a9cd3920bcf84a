/** What a load run is given and what it gives back: the engine's options, observer and result. */
import { newHistogram, type Histogram } from './histogram.js';
import type { ArrivalProcess, RunShape } from './schedule.js';
import type { Interval } from './intervals.js';

export interface LoadOptions extends RunShape {
  model: 'open' | 'closed';
  /** Stop after this many measured requests. */
  requests?: number;
  /** Open model: most requests in flight; arrivals beyond wait in a queue (see queueBound), then drop. */
  maxInflight: number;
  /** Arrivals that may wait for a free slot; default 10 x maxInflight, at least 1000. */
  maxQueue?: number;
  /** Closed model: requests in flight per worker (HTTP pipelining, RPC calls on one connection). */
  pipelining: number;
  /** Ticks on a setImmediate loop instead of timers: tighter pacing for a core. */
  precise: boolean;
  /** Open model: evenly spaced arrivals (default) or a Poisson process at the same rate. */
  arrivals?: ArrivalProcess;
  /** Uniform numbers in [0, 1) for Poisson arrivals (tests seed it). */
  random?: () => number;
  /** How long in-flight requests may take to finish once sending stops. */
  drainMs: number;
  /** Interval length (default 1000 ms): intervals end on its multiples of the wall clock. */
  intervalMs?: number;
  /** The wall clock at the run's start, ms since the epoch (default Date.now(); tests fix it). */
  epochAtStartMs?: number;
  signal?: AbortSignal;
  /** Operation kinds reported in this order (e.g. Xray's events in lifecycle order), even when 0. */
  kinds?: readonly string[];
  /** Called with each finished interval (progress line, CSV, histogram log). */
  onInterval?: (interval: Interval) => void;
  /** Told of every measured request as it goes and as it ends (live metrics, the raw per-request file). */
  observer?: LoadObserver;
}

/** One measured request, as the engine saw it. Times are ms from the start of the run. */
export interface RequestRecord {
  /** When the schedule wanted it sent (open model; the send time in the closed model). */
  intendedMs: number;
  sentMs: number;
  doneMs: number;
  outcome: string;
  /** Whether the target counts the outcome as an error. */
  failed: boolean;
  kind: string | undefined;
}

/**
 * Watches a run as it goes. Called on the engine's hot path: implementations must be cheap (a
 * counter, a bucket) and must not throw.
 */
export interface LoadObserver {
  /** The wall clock at the run's start (ms since the epoch): record times are from there. */
  start?(epochAtStartMs: number): void;
  sent?(): void;
  completed?(record: RequestRecord): void;
  dropped?(): void;
}

export interface KindStats {
  outcomes: Map<string, number>;
  response: Histogram;
}


export interface LoadResult {
  model: 'open' | 'closed';
  durationMs: number;
  /** Arrivals the schedule called for in the measured part (open model). */
  scheduled: number;
  /** The schedule's mean rate over the measured part (open model): the rate asked, however the run ended. */
  targetRate?: number;
  requests: number;
  dropped: number;
  errors: number;
  /** Requests still without a reply when the drain ended. */
  unfinished: number;
  outcomes: Map<string, number>;
  /** Latency from the intended send, per outcome class: the headline takes the classes that are answers. */
  byClass: Map<string, Histogram>;
  /** The outcome classes the target counts as errors (seen in this run). */
  errorClasses: Set<string>;
  /** The wall clock at the measured start, ms since the epoch. */
  startEpochMs: number;
  kinds: Map<string, KindStats>;
  response: Histogram;
  service: Histogram;
  lateness: Histogram;
  cpuUs: number;
  /** Merged logs: the busiest generator's CPU, % of one core (cpuUs is their sum). */
  peakCpuPercent?: number;
  interrupted: boolean;
}

/** A result with nothing recorded yet: what a run starts from, and what merged logs add into. */
export function emptyLoadResult(model: LoadResult['model']): LoadResult {
  return {
    model, durationMs: 0, scheduled: 0, requests: 0, dropped: 0, errors: 0, unfinished: 0,
    outcomes: new Map(), byClass: new Map(), errorClasses: new Set(), startEpochMs: 0, kinds: new Map(), response: newHistogram(), service: newHistogram(), lateness: newHistogram(), cpuUs: 0, interrupted: false,
  };
}
