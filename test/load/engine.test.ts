import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runLoad } from '../../src/load/engine.js';
import { type LoadOptions } from '../../src/load/run-types.js';
import { type Interval } from '../../src/load/intervals.js';
import { newHistogram, percentileCurve, percentilesOf, recordUs } from '../../src/load/histogram.js';
import { summarize } from '../../src/load/summary.js';
import type { LoadTarget } from '../../src/load/target.js';

/** A target that answers after `delayMs(i)` (fake or real timers), recording when each request went out. */
function fakeTarget(delayMs: (index: number) => number, failures: string[] = []): LoadTarget & { sentAt: number[]; maxInFlight: number } {
  let inFlight = 0;
  const target = {
    sentAt: [] as number[],
    maxInFlight: 0,
    failures: new Set(failures),
    open: async () => undefined,
    close: async () => undefined,
    send(_op: undefined, done: (outcome: string) => void) {
      const index = target.sentAt.length;
      target.sentAt.push(performance.now());
      inFlight++;
      target.maxInFlight = Math.max(target.maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        done(index % 10 === 9 ? 'deny' : 'allow');
      }, delayMs(index));
    },
  };
  return target;
}

const base: LoadOptions = { model: 'open', start: 100, durationMs: 2000, warmupMs: 0, maxInflight: 100, pipelining: 1, precise: false, drainMs: 1000 };

describe('the load engine on a fake clock', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  async function run<T>(promise: Promise<T>, ms: number): Promise<T> {
    await vi.advanceTimersByTimeAsync(ms);
    return promise;
  }

  it('open model: sends every arrival at its intended time, no more, no fewer', async () => {
    const target = fakeTarget(() => 5);
    const t0 = performance.now();
    const result = await run(runLoad(target, base), 4000);
    expect(result.requests).toBe(200);
    expect(result.scheduled).toBe(200);
    expect(result.dropped).toBe(0);
    // Arrival k at k x 10 ms; a fake timer fires on time, so lateness is 0.
    target.sentAt.forEach((at, k) => expect(at - t0).toBeCloseTo(k * 10, 6));
    expect(result.outcomes.get('allow')).toBe(180);
    expect(result.outcomes.get('deny')).toBe(20);
    // HDR at 3 significant digits: within 0.1 %.
    expect(Math.abs(percentilesOf(result.service).p50 - 5000)).toBeLessThanOrEqual(5);
    expect(result.lateness.maxValue).toBeLessThanOrEqual(1);
  });

  it('with a warm-up, exactly rate x duration are measured: none lost at either edge', async () => {
    const target = fakeTarget(() => 1);
    const result = await run(runLoad(target, { ...base, start: 2000, warmupMs: 2000, durationMs: 5000 }), 9000);
    expect(result.requests).toBe(10_000);
    expect(target.sentAt.length).toBe(14_000);
    expect(result.durationMs).toBe(5000);
  });

  it('a linear ramp sends the integral of the rate: 0 -> 200/s over 2 s is 200 requests, denser at the end', async () => {
    const target = fakeTarget(() => 1);
    const t0 = performance.now();
    const result = await run(runLoad(target, { ...base, start: 0, stages: [{ durationMs: 2000, target: 200 }] }), 4000);
    expect(result.requests).toBeGreaterThanOrEqual(199);
    expect(result.requests).toBeLessThanOrEqual(201);
    const firstHalf = target.sentAt.filter((at) => at - t0 < 1000).length;
    // ∫0..1 100t dt = 50 of the 200.
    expect(firstHalf).toBeGreaterThanOrEqual(49);
    expect(firstHalf).toBeLessThanOrEqual(51);
  });

  it('coordinated omission: one 500 ms stall shows in the from-intended histogram, not only as one slow service time', async () => {
    // One connection: while request 100 stalls, the next 50 arrivals wait for it.
    const target = fakeTarget((i) => (i === 100 ? 500 : 1));
    const result = await run(runLoad(target, { ...base, durationMs: 3000, maxInflight: 1 }), 6000);
    expect(result.requests).toBe(300);
    const response = percentilesOf(result.response);
    const service = percentilesOf(result.service);
    expect(service.max).toBeGreaterThanOrEqual(499_000);
    expect(service.p99).toBeLessThan(2_000);
    // ~50 of 300 requests waited 10-500 ms: p90 and p99 show the stall.
    expect(response.p90).toBeGreaterThan(50_000);
    expect(response.p99).toBeGreaterThan(400_000);
  });

  it('counts arrivals that find no slot and no queue room as dropped, never skips them silently', async () => {
    const target = fakeTarget(() => 10_000);
    const result = await run(runLoad(target, { ...base, start: 1000, durationMs: 1000, maxInflight: 2, maxQueue: 3, drainMs: 100 }), 3000);
    expect(result.scheduled).toBe(1000);
    // 2 sent, 3 queued (dropped at the end: they never went out), the rest dropped on arrival.
    expect(result.dropped).toBe(998);
    expect(result.unfinished).toBe(2);
    expect(result.requests).toBe(0);
  });

  it('closed model: keeps exactly C x P requests in flight', async () => {
    const target = fakeTarget(() => 10);
    const result = await run(runLoad(target, { ...base, model: 'closed', start: 4, pipelining: 2, durationMs: 1000 }), 3000);
    expect(target.maxInFlight).toBe(8);
    // 8 in flight, 10 ms each, 1 s.
    expect(result.requests).toBeGreaterThanOrEqual(792);
    expect(result.requests).toBeLessThanOrEqual(808);
  });

  it('--requests stops after that many measured requests; warm-up requests are not counted', async () => {
    const target = fakeTarget(() => 2);
    const result = await run(runLoad(target, { ...base, warmupMs: 500, requests: 37 }), 3000);
    expect(result.requests).toBe(37);
    expect(target.sentAt.length).toBe(50 + 37);
    // The rate asked, however early the run stopped (it was 200.4 for --rate 200 once).
    expect(summarize(result).targetRate).toBe(100);
  });

  it('stops sending on abort and reports what it has (interrupted)', async () => {
    const target = fakeTarget(() => 5);
    const controller = new AbortController();
    const promise = runLoad(target, { ...base, durationMs: 10_000, signal: controller.signal });
    await vi.advanceTimersByTimeAsync(1000);
    controller.abort();
    const result = await run(promise, 1000);
    expect(result.interrupted).toBe(true);
    expect(result.requests).toBeGreaterThanOrEqual(99);
    expect(result.requests).toBeLessThanOrEqual(101);
  });

  it('intervals end on whole seconds of the wall clock; the first and last are partial with their true length, the drain adds no row', async () => {
    const target = fakeTarget(() => 250);
    const intervals: Interval[] = [];
    // The run starts 0.4 s into a wall-clock second and lasts 3 s; replies take 250 ms, so the last ones come in the drain.
    const result = await run(runLoad(target, { ...base, durationMs: 3000, epochAtStartMs: 10_400, onInterval: (i) => intervals.push(i) }), 5000);
    expect(intervals.map((i) => [i.startMs, i.endMs, i.startEpochMs, i.partial])).toEqual([
      [0, 600, 10_400, true], [600, 1600, 11_000, false], [1600, 2600, 12_000, false], [2600, 3000, 13_000, true],
    ]);
    expect(intervals.reduce((n, i) => n + i.requests, 0)).toBe(result.requests);
    expect(result.requests).toBe(300);
    // The first 250 ms bring no reply; the last interval takes the replies that came during the drain.
    expect(intervals[0]!.requests).toBe(35);
    expect(intervals[3]!.requests).toBe(65);
    expect(result.startEpochMs).toBe(10_400);
  });

  it('a stalled second is an interval with no replies, not a missing row', async () => {
    // Requests sent in the second second are held until its end: that second sees no reply at all.
    const target = fakeTarget((i) => (i >= 100 && i < 200 ? 2000 - i * 10 : 1));
    const intervals: Interval[] = [];
    const result = await run(runLoad(target, { ...base, durationMs: 3000, epochAtStartMs: 0, onInterval: (i) => intervals.push(i) }), 5000);
    expect(intervals.map((i) => [i.startMs, i.requests, i.partial])).toEqual([[0, 100, false], [1000, 0, false], [2000, 200, false]]);
    expect(result.requests).toBe(300);
  });

  it('errors are the outcomes the target names as failures', async () => {
    const target = fakeTarget(() => 1, ['deny']);
    const result = await run(runLoad(target, { ...base, durationMs: 1000 }), 3000);
    expect(result.errors).toBe(10);
  });
});

describe('the load engine on the real clock', () => {
  it('sends 200 requests in 1 s at 200/s, with measured lateness', async () => {
    const target = fakeTarget(() => 1);
    const started = performance.now();
    const result = await runLoad(target, { ...base, start: 200, durationMs: 1000 });
    expect(result.requests).toBe(200);
    // An upper bound only to show it does not hang: far above the time it takes, so a busy machine cannot fail it.
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(result.lateness.totalCount).toBe(200);
  });
});

describe('the load engine with targets that misbehave', () => {
  const failAtOnce: LoadTarget = {
    failures: new Set(['network-error']),
    open: async () => undefined,
    close: async () => undefined,
    send: (_op, done) => done('network-error'),
  };

  it('a target that fails synchronously does not recurse (closed and open model)', async () => {
    const closed = await runLoad(failAtOnce, { ...base, model: 'closed', start: 4, durationMs: 300 });
    expect(closed.requests).toBeGreaterThan(100);
    expect(closed.errors).toBe(closed.requests);
    const open = await runLoad(failAtOnce, { ...base, start: 20_000, durationMs: 300, maxInflight: 10 });
    expect(open.requests + open.dropped).toBe(open.scheduled);
  });

  it('no arrival at the warm-up edge is lost when the event loop stalls across it', async () => {
    let stalled = false;
    const started = performance.now();
    const target: LoadTarget = {
      failures: new Set(),
      open: async () => undefined,
      close: async () => undefined,
      send(_op, done) {
        if (!stalled && performance.now() - started > 290) {
          stalled = true;
          while (performance.now() - started < 340) {
            // A 50 ms stall spanning the end of the warm-up.
          }
        }
        setImmediate(() => done('allow'));
      },
    };
    const result = await runLoad(target, { ...base, start: 10_000, warmupMs: 300, durationMs: 200, maxInflight: 10_000 });
    expect(stalled).toBe(true);
    expect(result.scheduled).toBe(2000);
    expect(result.requests + result.dropped + result.unfinished).toBe(2000);
  });
});


describe('percentiles', () => {
  it('never above max, whatever the bucket rounding', () => {
    const histogram = newHistogram();
    // 1001..1999 µs land in 1 µs buckets; 20,000,001 µs in a bucket whose top is above it.
    for (let i = 0; i < 998; i++) recordUs(histogram, 1001 + i);
    recordUs(histogram, 20_000_001);
    recordUs(histogram, 20_000_001);
    const p = percentilesOf(histogram);
    expect(histogram.getValueAtPercentile(99.9)).toBeGreaterThan(histogram.maxValue);
    for (const value of [p.p50, p.p90, p.p99, p.p999]) expect(value).toBeLessThanOrEqual(p.max);
    for (const point of percentileCurve(histogram)) expect(point.us).toBeLessThanOrEqual(histogram.maxValue);
  });
});
