/**
 * What to send when: durations, stages (linear ramps of the arrival rate, or of the concurrency
 * in the closed model) and the arrival schedule of the open model. Arrival k (0-based) is due at
 * the time the cumulative count N(t) = ∫rate reaches k; the engine sends, on each tick, every
 * arrival already due, so a late timer costs latency (which is measured), never requests.
 */
import { InputError } from '../shared/errors.js';
import { parseTime } from '../shared/duration.js';
import type { ArrivalSource } from './target.js';

/** 24 h: a longer run needs --yes (a typo like 10000m should not occupy a machine for a week). */
export const LONG_RUN_MS = 24 * 3600 * 1000;

/** '500ms', '10s', '2m', '1h', or a bare number of seconds; returns milliseconds. */
export function parseDuration(text: string, what: string): number {
  return Math.round(parseTime(text, what, 's', { max: Number.MAX_SAFE_INTEGER }) * 1000);
}

export interface Stage {
  durationMs: number;
  /** Arrivals per second (open model) or concurrency (closed model) at the stage's end. */
  target: number;
}

/** `10s:100,30s:2000,10s:0`: each part ramps linearly from the previous target to its own. */
export function parseStages(text: string): Stage[] {
  const parts = text.split(',');
  return parts.map((part, index) => {
    const where = `--stages part ${index + 1} ("${part.trim()}")`;
    const [duration, target, extra] = part.split(':');
    if (duration === undefined || target === undefined || extra !== undefined) throw new InputError(`${where}: expected DURATION:TARGET, e.g. 30s:2000`);
    const durationMs = parseDuration(duration, where);
    if (durationMs <= 0) throw new InputError(`${where}: the duration must be more than 0`);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(target)) throw new InputError(`${where}: the target must be a number >= 0, got "${target.trim()}"`);
    return { durationMs, target: Number(target) };
  });
}

interface Segment {
  startMs: number;
  durationMs: number;
  from: number;
  to: number;
  /** Arrivals before the segment starts. */
  startCount: number;
}

/**
 * A piecewise-linear rate over time (milliseconds from the start of the run, warm-up included).
 * The same shape serves the closed model, where the "rate" is the number of connections busy.
 */
export class Profile {
  private readonly segments: Segment[] = [];
  readonly totalMs: number;
  /** Arrivals over the whole profile. */
  readonly totalCount: number;

  constructor(start: number, stages: readonly Stage[]) {
    let startMs = 0;
    let count = 0;
    let from = start;
    for (const stage of stages) {
      this.segments.push({ startMs, durationMs: stage.durationMs, from, to: stage.target, startCount: count });
      count += ((from + stage.target) / 2) * (stage.durationMs / 1000);
      startMs += stage.durationMs;
      from = stage.target;
    }
    this.totalMs = startMs;
    this.totalCount = count;
  }

  /** The rate (or concurrency) at time t. */
  valueAt(ms: number): number {
    const segment = this.segmentAt(ms);
    if (!segment) return 0;
    const fraction = Math.min(1, Math.max(0, (ms - segment.startMs) / segment.durationMs));
    return segment.from + (segment.to - segment.from) * fraction;
  }

  /** N(t): the arrivals due by time t (fractional). */
  countAt(ms: number): number {
    if (ms >= this.totalMs) return this.totalCount;
    const segment = this.segmentAt(ms);
    if (!segment) return 0;
    const tau = (ms - segment.startMs) / 1000;
    const slope = (segment.to - segment.from) / (segment.durationMs / 1000);
    return segment.startCount + segment.from * tau + (slope * tau * tau) / 2;
  }

  /** The time at which arrival k is due: the inverse of countAt. Infinity past the end. */
  timeOf(k: number): number {
    // Arrivals 0 .. ceil(total) - 1: one due exactly at the end belongs to the next run.
    if (k >= this.totalCount - 1e-9) return Infinity;
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.segments[middle]!.startCount <= k) low = middle;
      else high = middle - 1;
    }
    const segment = this.segments[low];
    if (!segment) return Infinity;
    const n = k - segment.startCount;
    const seconds = segment.durationMs / 1000;
    const a = (segment.to - segment.from) / seconds / 2;
    const b = segment.from;
    let tau: number;
    if (Math.abs(a) < 1e-12) tau = b > 0 ? n / b : 0;
    else {
      const discriminant = Math.max(0, b * b + 4 * a * n);
      // The numerically stable root of a·τ² + b·τ − n = 0.
      tau = (2 * n) / (b + Math.sqrt(discriminant));
      if (!Number.isFinite(tau)) tau = 0;
    }
    return segment.startMs + Math.min(seconds, tau) * 1000;
  }

  private segmentAt(ms: number): Segment | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      if (this.segments[i]!.startMs <= ms) return ms < this.totalMs ? this.segments[i] : undefined;
    }
    return undefined;
  }
}

/** How long a run lasts and how its rate (or concurrency) moves: the part of the options a Profile is made from. */
export interface RunShape {
  /** Open: arrivals per second; closed: concurrency. Ramped by `stages` when given. */
  start: number;
  stages?: readonly Stage[];
  /** Measured duration in ms (ignored when stages are given: their sum is the duration). */
  durationMs: number;
  warmupMs: number;
}

/**
 * The whole run as one profile: the warm-up (at the first stage's target when that is higher than
 * the start, so the measured ramp starts warm), then the stages or one flat stage. Its totalMs is
 * the run's length, for the engine and for the CLI's checks alike.
 */
export function runProfile(shape: RunShape): Profile {
  const staged = shape.stages !== undefined && shape.stages.length > 0;
  const measured: Stage[] = staged ? [...shape.stages!] : [{ durationMs: shape.durationMs, target: shape.start }];
  const warmRate = staged ? Math.max(shape.start, shape.stages![0]!.target) : shape.start;
  const stages = shape.warmupMs > 0 ? [{ durationMs: shape.warmupMs, target: warmRate }, ...measured] : measured;
  return new Profile(shape.warmupMs > 0 ? warmRate : shape.start, stages);
}

export type ArrivalProcess = 'uniform' | 'poisson';

export interface ProfileArrivalsOptions {
  /** Arrivals before this time (the warm-up) are not counted against `requests`. */
  warmupMs?: number;
  /** Stop after this many measured arrivals (--requests). */
  requests?: number;
  /** `uniform` (default): evenly spaced at the profile's rate; `poisson`: exponential gaps at that rate. */
  process?: ArrivalProcess;
  /** A source of uniform numbers in [0, 1) (tests seed it). */
  random?: () => number;
}

/**
 * Open-model arrivals from a rate profile. Uniform arrivals are the profile's count inverted at
 * 0, 1, 2, ...; Poisson arrivals invert it at the partial sums of exponential(1) gaps, which gives a
 * Poisson process whose rate follows the profile, ramps included (the time-change theorem).
 */
export class ProfileArrivals implements ArrivalSource<undefined> {
  private position: number;
  private next: number;
  private measured = 0;

  constructor(private readonly profile: Profile, private readonly options: ProfileArrivalsOptions = {}) {
    this.position = options.process === 'poisson' ? this.gap() : 0;
    this.next = profile.timeOf(this.position);
  }

  peek(): number {
    return this.options.requests !== undefined && this.measured >= this.options.requests ? Infinity : this.next;
  }

  take(): undefined {
    if (this.next >= (this.options.warmupMs ?? 0) - 1e-6) this.measured++;
    this.position += this.options.process === 'poisson' ? this.gap() : 1;
    this.next = this.profile.timeOf(this.position);
    return undefined;
  }

  exhausted(): boolean {
    return this.peek() === Infinity;
  }

  private gap(): number {
    return -Math.log(1 - (this.options.random ?? Math.random)());
  }
}
