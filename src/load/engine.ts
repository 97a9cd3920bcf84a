/**
 * The one load engine. Open model: arrivals at their intended times (docs/load-engine.md §5.1),
 * latency from the intended send time and, separately, from the actual send (service time);
 * an arrival that finds max-inflight reached waits in a bounded queue (its wait counts as
 * latency: this is what shows a stalled backend) and beyond that is counted as dropped, never
 * silently skipped. The clock is the global `performance`, so tests can fake it. Closed model: C
 * workers (× pipelining) each sending again as soon as a reply comes. Both: warm-up excluded,
 * per-second interval histograms merged into the totals, and the scheduler's own lateness
 * measured so the resolution of the figures is visible.
 */
import { newHistogram, recordUs, type Histogram } from './histogram.js';
import { IntervalClock, type Interval } from './intervals.js';
import { emptyLoadResult, type KindStats, type LoadOptions, type LoadResult } from './run-types.js';
import { ProfileArrivals, runProfile, type Profile } from './schedule.js';
import type { ArrivalSource, LoadTarget } from './target.js';

/**
 * Runs the load. Without a source, open-model arrivals follow the rate profile and carry no
 * operation (a target of one kind of request); the closed model always sends `undefined`.
 */
export function runLoad(target: LoadTarget<undefined>, options: LoadOptions): Promise<LoadResult>;
export function runLoad<Op>(target: LoadTarget<Op | undefined>, options: LoadOptions, source?: ArrivalSource<Op>): Promise<LoadResult>;
export function runLoad<Op>(target: LoadTarget<Op | undefined>, options: LoadOptions, source?: ArrivalSource<Op>): Promise<LoadResult> {
  return new LoadRun(target, options, source).run();
}

/** The engine never looks inside an operation: it passes it from the source to the target. */
interface Queued {
  op: unknown;
  intendedMs: number;
}

/**
 * An outcome class in the current interval: its latencies go into one histogram per request,
 * which the interval's end adds into the interval's and the run's figures (record, flushClasses).
 */
interface ClassSlot {
  outcome: string;
  failed: boolean;
  response: Histogram;
}

class LoadRun {
  private readonly profile: Profile;
  private readonly source: ArrivalSource<unknown> | undefined;
  private t0 = 0;
  private inFlight = 0;
  private readonly queue: (Queued | undefined)[] = [];
  private queueHead = 0;
  private stopped = false;
  private interrupted = false;
  private readonly result: LoadResult;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private cpuAtStart: NodeJS.CpuUsage | undefined;
  private measuredSent = 0;
  private finish!: () => void;
  private readonly slots = new Map<string, ClassSlot>();
  /** The slot of the last outcome: replies mostly repeat their class. */
  private lastSlot: ClassSlot | undefined;
  /** The closed model sends at the intended time: service time is response time, recorded once. */
  private readonly serviceIsResponse: boolean;

  constructor(private readonly target: LoadTarget<unknown>, private readonly options: LoadOptions, source?: ArrivalSource<unknown>) {
    this.profile = runProfile(options);
    this.source = source ?? (options.model === 'open'
      ? new ProfileArrivals(this.profile, { warmupMs: options.warmupMs, requests: options.requests, process: options.arrivals, random: options.random })
      : undefined);
    this.result = emptyLoadResult(options.model);
    this.serviceIsResponse = options.model === 'closed';
    for (const kind of options.kinds ?? []) this.kindStats(kind);
  }

  private get queueBound(): number {
    return this.options.maxQueue ?? Math.max(1000, this.options.maxInflight * 10);
  }

  private get warmupMs(): number {
    return this.options.warmupMs;
  }

  async run(): Promise<LoadResult> {
    const done = new Promise<void>((resolve) => (this.finish = resolve));
    const onAbort = (): void => {
      this.interrupted = true;
      this.stopSending();
    };
    this.options.signal?.addEventListener('abort', onAbort, { once: true });
    this.t0 = performance.now();
    this.epochAtT0 = this.options.epochAtStartMs ?? Date.now();
    this.options.observer?.start?.(this.epochAtT0);
    if (this.warmupMs === 0) this.startMeasuring();
    else this.warmupTimer = setTimeout(() => this.startMeasuring(), this.warmupMs);
    const onEnd = (): void => {
      // A timer may fire a hair early: wait for the schedule's real end.
      const left = this.profile.totalMs - this.now();
      if (left > 0) {
        this.endTimer = setTimeout(onEnd, Math.max(1, left));
        return;
      }
      // Arrivals due before the end that a late tick has not sent yet still go out.
      if (this.options.model === 'open') this.tick();
      this.stopSending();
    };
    this.endTimer = setTimeout(onEnd, this.profile.totalMs);
    if (this.options.model === 'open') this.tick();
    else this.closedTick();
    await done;
    clearTimeout(this.intervalTimer);
    clearTimeout(this.endTimer);
    clearTimeout(this.warmupTimer);
    this.options.signal?.removeEventListener('abort', onAbort);
    this.clock?.finish();
    this.result.interrupted = this.interrupted;
    for (const outcome of this.result.byClass.keys()) if (this.target.failures.has(outcome)) this.result.errorClasses.add(outcome);
    return this.result;
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  /** Called by the warm-up timer, or by whichever tick or send first passes warmupMs. */
  private startMeasuring(): void {
    if (this.cpuAtStart) return;
    this.cpuAtStart = process.cpuUsage();
    // The measured part starts at its nominal time: arrivals are judged against the schedule.
    this.measureStartMs = this.warmupMs;
    this.result.startEpochMs = this.epochAtT0 + this.measureStartMs;
    this.clock = new IntervalClock({
      epochAtStartMs: this.result.startEpochMs,
      intervalMs: this.options.intervalMs ?? 1000,
      plannedEndMs: this.profile.totalMs - this.measureStartMs,
      targetRateAt: (ms) => (this.options.model === 'open' ? this.profile.valueAt(this.measureStartMs + ms) : 0),
      emit: (interval) => {
        this.flushClasses(interval);
        this.result.response.add(interval.response);
        this.result.service.add(interval.service);
        this.options.onInterval?.(interval);
      },
    });
    this.scheduleIntervalTimer();
  }

  /** Intervals close as requests pass their end; this timer closes them when nothing happens. */
  private scheduleIntervalTimer(): void {
    const clock = this.clock!;
    if (clock.nextEndMs === Infinity) return;
    const delay = clock.nextEndMs - (this.now() - this.measureStartMs);
    this.intervalTimer = setTimeout(() => {
      clock.advance(this.now() - this.measureStartMs);
      this.scheduleIntervalTimer();
    }, Math.max(1, Math.ceil(delay)));
  }

  /** The interval now, closing those that ended. */
  private currentInterval(now: number): Interval {
    const clock = this.clock!;
    const measuredMs = now - this.measureStartMs;
    if (measuredMs >= clock.nextEndMs) clock.advance(measuredMs);
    return clock.current;
  }

  private epochAtT0 = 0;
  private clock: IntervalClock | undefined;
  private intervalTimer: NodeJS.Timeout | undefined;
  private endTimer: NodeJS.Timeout | undefined;
  private warmupTimer: NodeJS.Timeout | undefined;

  private measureStartMs = 0;

  private isMeasured(intendedMs: number): boolean {
    // A hair of tolerance: the profile's inverse puts the first measured arrival at warmupMs ± float error.
    return intendedMs >= this.warmupMs - 1e-6;
  }

  // ---- open model -------------------------------------------------------------------------

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const source = this.source!;
    const now = this.now();
    if (now >= this.warmupMs) this.startMeasuring();
    let next = source.peek();
    while (next <= now) {
      const op = source.take();
      const measured = this.isMeasured(next);
      if (measured) this.result.scheduled++;
      if (this.inFlight < this.options.maxInflight) {
        if (measured) recordUs(this.result.lateness, (now - next) * 1000);
        this.send(op, next, now);
      } else if (this.queue.length - this.queueHead < this.queueBound) {
        this.queue.push({ op, intendedMs: next });
      } else {
        this.drop(op, next, now);
      }
      next = source.peek();
    }
    // Out of arrivals early only with --requests; otherwise the schedule's end stops the run.
    if (this.options.requests !== undefined && source.exhausted() && this.inFlight === 0 && this.queueHead === this.queue.length) {
      this.stopSending();
      return;
    }
    this.scheduleTick(next - now);
  }

  private scheduleTick(delayMs: number): void {
    if (this.timer !== undefined || this.stopped) return;
    if (this.options.precise && delayMs < 20) this.timer = setImmediate(() => this.tick());
    // Infinity: an arrival source waiting on replies; a completion calls tick again.
    else if (delayMs !== Infinity) this.timer = setTimeout(() => this.tick(), Math.max(0, Math.min(delayMs, 1000)));
  }

  // ---- closed model -----------------------------------------------------------------------

  private closedTick(): void {
    if (this.stopped) return;
    if (this.now() >= this.warmupMs) this.startMeasuring();
    this.fillLanes();
    // Ramps change the number of workers: look again every 50 ms.
    this.timer = setTimeout(() => this.closedTick(), 50);
  }

  /** `now`: the caller's clock reading, taken just before (one clock read per request, not three). */
  private fillLanes(now = this.now()): void {
    const lanes = Math.round(this.profile.valueAt(now)) * this.options.pipelining;
    while (!this.stopped && this.inFlight < lanes && this.closedMayStart()) {
      this.send(undefined, now, now);
      now = this.now();
    }
  }

  private closedMayStart(): boolean {
    return this.options.requests === undefined || this.measuredSent < this.options.requests || !this.cpuAtStart;
  }

  // ---- both -------------------------------------------------------------------------------

  private send(op: unknown, intendedMs: number, sentMs: number): void {
    this.inFlight++;
    const measured = this.isMeasured(intendedMs);
    if (measured) {
      this.startMeasuring();
      this.measuredSent++;
      this.options.observer?.sent?.();
    }
    let called = false;
    let sending = true;
    this.target.send(op, (outcome, kind) => {
      if (called) return;
      called = true;
      // A target that fails at once (no connection) must not recurse into the next send.
      if (sending) setImmediate(() => this.complete(op, measured, intendedMs, sentMs, outcome, kind));
      else this.complete(op, measured, intendedMs, sentMs, outcome, kind);
    });
    sending = false;
  }

  private complete(op: unknown, measured: boolean, intendedMs: number, sentMs: number, outcome: string, kind: string | undefined): void {
    this.inFlight--;
    const now = this.now();
    if (measured && !this.drained) this.record(outcome, kind, intendedMs, sentMs, now);
    this.source?.completed?.(op, outcome, now);
    this.afterCompletion(now);
  }

  /** An arrival that could not even wait: counted, and its source told (a session reschedules). */
  private drop(op: unknown, intendedMs: number, now: number): void {
    if (this.isMeasured(intendedMs)) {
      this.result.dropped++;
      this.currentInterval(now).dropped++;
      this.options.observer?.dropped?.();
    }
    this.source?.dropped?.(op, now);
  }

  private drained = false;

  /**
   * One histogram record per request in the closed model (two in the open: service time differs):
   * the interval's and the run's response figures, all and by class, are sums of the class slots
   * (flushClasses), the same values as recording each into every figure.
   */
  private record(outcome: string, kind: string | undefined, intendedMs: number, sentMs: number, now: number): void {
    const result = this.result;
    const interval = this.currentInterval(now);
    result.requests++;
    interval.requests++;
    let slot = this.lastSlot;
    if (slot?.outcome !== outcome) this.lastSlot = slot = this.slotOf(outcome);
    this.options.observer?.completed?.({ intendedMs, sentMs, doneMs: now, outcome, failed: slot.failed, kind });
    if (slot.failed) {
      result.errors++;
      interval.errors++;
    }
    const responseUs = (now - intendedMs) * 1000;
    recordUs(slot.response, responseUs);
    if (!this.serviceIsResponse) recordUs(interval.service, (now - sentMs) * 1000);
    if (kind !== undefined) {
      const stats = this.kindStats(kind);
      stats.outcomes.set(outcome, (stats.outcomes.get(outcome) ?? 0) + 1);
      recordUs(stats.response, responseUs);
    }
  }

  private slotOf(outcome: string): ClassSlot {
    let slot = this.slots.get(outcome);
    if (!slot) this.slots.set(outcome, (slot = { outcome, failed: this.target.failures.has(outcome), response: newHistogram() }));
    return slot;
  }

  /** An interval ends: its class slots go into its response (and service) figures and the run's, and start again empty. */
  private flushClasses(interval: Interval): void {
    const result = this.result;
    for (const slot of this.slots.values()) {
      const count = slot.response.totalCount;
      if (count === 0) continue;
      interval.response.add(slot.response);
      let byClass = result.byClass.get(slot.outcome);
      if (!byClass) result.byClass.set(slot.outcome, (byClass = newHistogram()));
      byClass.add(slot.response);
      result.outcomes.set(slot.outcome, (result.outcomes.get(slot.outcome) ?? 0) + count);
      slot.response.reset();
    }
    if (this.serviceIsResponse) interval.service.add(interval.response);
  }

  private kindStats(kind: string): KindStats {
    let stats = this.result.kinds.get(kind);
    if (!stats) this.result.kinds.set(kind, (stats = { outcomes: new Map(), response: newHistogram() }));
    return stats;
  }

  private afterCompletion(now: number): void {
    if (this.stopped) {
      if (this.inFlight === 0) this.end();
      return;
    }
    if (this.options.model === 'closed') {
      if (!this.closedMayStart() && this.inFlight === 0) this.stopSending();
      else this.fillLanes(now);
      return;
    }
    if (this.queueHead < this.queue.length && this.inFlight < this.options.maxInflight) {
      const queued = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.send(queued.op, queued.intendedMs, this.now());
    }
    // A session model may have just learned its next arrivals.
    if (this.timer === undefined) this.tick();
  }

  private stopSending(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    // Queued arrivals never went out: they are dropped, and said to be.
    const now = this.now();
    for (let i = this.queueHead; i < this.queue.length; i++) this.drop(this.queue[i]!.op, this.queue[i]!.intendedMs, now);
    this.queue.length = 0;
    this.queueHead = 0;
    // Stopped by the schedule's end: the measured part is exactly as long as asked (a late timer adds nothing).
    this.result.durationMs = this.cpuAtStart ? Math.min(this.now(), this.profile.totalMs) - this.measureStartMs : 0;
    if (this.clock) {
      clearTimeout(this.intervalTimer);
      this.clock.stop(this.result.durationMs);
    }
    // A traffic model's own arrivals (the Xray event mix) are its target; the profile's rate only labels them.
    if (this.options.model === 'open' && this.result.durationMs > 0 && this.source instanceof ProfileArrivals) {
      const arrivals = this.profile.countAt(this.measureStartMs + this.result.durationMs) - this.profile.countAt(this.measureStartMs);
      this.result.targetRate = arrivals / (this.result.durationMs / 1000);
    }
    if (this.cpuAtStart) {
      const cpu = process.cpuUsage(this.cpuAtStart);
      this.result.cpuUs = cpu.user + cpu.system;
    }
    if (this.inFlight === 0) {
      this.end();
      return;
    }
    setTimeout(() => {
      this.drained = true;
      this.result.unfinished = this.inFlight;
      this.end();
    }, this.options.drainMs).unref();
  }

  private ended = false;

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.finish();
  }


}
