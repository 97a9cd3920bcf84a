import { describe, expect, it } from 'vitest';
import { parseDuration, parseStages, Profile, ProfileArrivals } from '../../src/load/schedule.js';
import { thrownBy } from '../helpers.js';
import { InputError } from '../../src/shared/errors.js';

describe('durations and stages', () => {
  it('reads durations in ms, s, m, h and bare seconds', () => {
    expect(parseDuration('500ms', 'x')).toBe(500);
    expect(parseDuration('10s', 'x')).toBe(10_000);
    expect(parseDuration('2m', 'x')).toBe(120_000);
    expect(parseDuration('1h', 'x')).toBe(3_600_000);
    expect(parseDuration('1.5', 'x')).toBe(1500);
    expect(thrownBy(InputError, () => parseDuration('10 sec', '--duration')).message).toBe('--duration: expected a duration like 500ms, 2s or 1m (a bare number is seconds), got "10 sec"');
  });

  it('reads stages, and a bad one names its part', () => {
    expect(parseStages('10s:100,30s:2000,10s:0')).toEqual([
      { durationMs: 10_000, target: 100 }, { durationMs: 30_000, target: 2000 }, { durationMs: 10_000, target: 0 },
    ]);
    expect(thrownBy(InputError, () => parseStages('10s:100,30s')).message).toBe('--stages part 2 ("30s"): expected DURATION:TARGET, e.g. 30s:2000');
    expect(thrownBy(InputError, () => parseStages('10s:100,5x:10')).message).toMatch(/^--stages part 2 \("5x:10"\): expected a duration/);
    expect(thrownBy(InputError, () => parseStages('0s:100')).message).toBe('--stages part 1 ("0s:100"): the duration must be more than 0');
    expect(thrownBy(InputError, () => parseStages('10s:-5')).message).toBe('--stages part 1 ("10s:-5"): the target must be a number >= 0, got "-5"');
  });
});

describe('the arrival profile', () => {
  it('constant rate: arrival k at k / rate', () => {
    const profile = new Profile(100, [{ durationMs: 2000, target: 100 }]);
    expect(profile.totalCount).toBe(200);
    expect(profile.timeOf(0)).toBe(0);
    expect(profile.timeOf(37)).toBeCloseTo(370, 9);
    expect(profile.timeOf(201)).toBe(Infinity);
    expect(profile.countAt(1234)).toBeCloseTo(123.4, 9);
  });

  it('ramps: timeOf inverts countAt in every segment', () => {
    const profile = new Profile(0, [{ durationMs: 10_000, target: 100 }, { durationMs: 30_000, target: 2000 }, { durationMs: 10_000, target: 0 }]);
    expect(profile.totalCount).toBeCloseTo(500 + 31_500 + 10_000, 6);
    for (const k of [0, 1, 10, 499, 500, 501, 20_000, 32_000, 41_999]) {
      expect(profile.countAt(profile.timeOf(k))).toBeCloseTo(k, 4);
    }
    expect(profile.valueAt(5000)).toBeCloseTo(50, 9);
    expect(profile.valueAt(45_000)).toBeCloseTo(1000, 9);
  });
});

describe('ProfileArrivals', () => {
  /** A seeded generator of uniform numbers in [0, 1). */
  const seeded = (seed: number): (() => number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const drain = (arrivals: ProfileArrivals): number[] => {
    const times: number[] = [];
    while (!arrivals.exhausted() && times.length < 1_000_000) {
      times.push(arrivals.peek());
      arrivals.take();
    }
    return times;
  };

  it('uniform: evenly spaced at the rate', () => {
    const times = drain(new ProfileArrivals(new Profile(100, [{ durationMs: 1000, target: 100 }])));
    expect(times).toHaveLength(100);
    times.forEach((t, k) => expect(t).toBeCloseTo(k * 10, 6));
  });

  it('poisson: the same rate with exponential gaps (mean 10 ms, coefficient of variation 1), following a ramp', () => {
    const times = drain(new ProfileArrivals(new Profile(1000, [{ durationMs: 100_000, target: 1000 }]), { process: 'poisson', random: seeded(42) }));
    // 100,000 expected; the standard deviation of a Poisson count is 316.
    expect(Math.abs(times.length - 100_000)).toBeLessThan(2000);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
    expect(mean).toBeCloseTo(1, 1);
    expect(sd / mean).toBeGreaterThan(0.95);
    expect(sd / mean).toBeLessThan(1.05);
    const ramp = drain(new ProfileArrivals(new Profile(0, [{ durationMs: 10_000, target: 2000 }]), { process: 'poisson', random: seeded(7) }));
    // 10,000 expected, three quarters of them in the second half.
    expect(Math.abs(ramp.length - 10_000)).toBeLessThan(500);
    expect(ramp.filter((t) => t >= 5000).length / ramp.length).toBeCloseTo(0.75, 1);
  });

  it('--requests counts measured arrivals only: the warm-up ones are extra', () => {
    const times = drain(new ProfileArrivals(new Profile(100, [{ durationMs: 1000, target: 100 }, { durationMs: 10_000, target: 100 }]), { warmupMs: 1000, requests: 37 }));
    expect(times).toHaveLength(100 + 37);
  });
});
