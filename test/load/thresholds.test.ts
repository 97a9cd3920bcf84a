import { describe, expect, it } from 'vitest';
import { checkThresholdClasses, evaluateThresholds, parseThreshold, thresholdPercentiles } from '../../src/load/thresholds.js';
import type { LoadSummary } from '../../src/load/summary.js';
import { thrownBy } from '../helpers.js';
import { InputError } from '../../src/shared/errors.js';

const summary: LoadSummary = {
  model: 'open', targetRate: 1000, achievedRate: 990, durationS: 10, requests: 9900, dropped: 100, errors: 5, errorRate: 5 / 9900, unfinished: 0,
  outcomes: { allow: 9895, 'network-error': 5 }, latencyUs: { p50: 800, p90: 2000, p99: 45_000, p999: 90_000, max: 120_000, min: 90, mean: 1200, stddev: 3000, p9999: 110_000 },
  latencyUsAll: { p50: 790, p90: 2000, p99: 45_000, p999: 95_000, max: 5_000_000, min: 50, mean: 1300, stddev: 9000 },
  latencyUsByClass: {
    allow: { p50: 800, p90: 2000, p99: 45_000, p999: 90_000, max: 120_000, min: 90, mean: 1200, stddev: 3000 },
    'network-error': { p50: 5_000_000, p90: 5_000_000, p99: 5_000_000, p999: 5_000_000, max: 5_000_000, min: 5_000_000, mean: 5_000_000, stddev: 0 },
  },
  serviceUs: { p50: 300, p90: 900, p99: 4000, p999: 9000, max: 100_000, min: 40, mean: 500, stddev: 800 }, percentiles: [50, 90, 99, 99.9], schedulerLatenessUs: { p50: 600, p99: 1800 },
  clientCpuUsPerRequest: 12, clientCpuPercent: 12, generatorBound: false, interrupted: false,
};

describe('thresholds', () => {
  it('judges latency, rates and counts', () => {
    const results = evaluateThresholds(
      ['p99<50ms', 'p99.9<50ms', 'service_p99<=4ms', 'error_rate<0.1%', 'achieved_rate>0.98*target', 'achieved_rate>0.995*target', 'dropped<1', 'drop_rate<2%', 'lateness_p99<2ms', 'requests>=9900'].map(parseThreshold),
      summary,
    );
    expect(results.map((r) => [r.threshold, r.ok])).toEqual([
      ['p99<50ms', true], ['p99.9<50ms', false], ['service_p99<=4ms', true], ['error_rate<0.1%', true],
      ['achieved_rate>0.98*target', true], ['achieved_rate>0.995*target', false], ['dropped<1', false], ['drop_rate<2%', true],
      ['lateness_p99<2ms', true], ['requests>=9900', true],
    ]);
    expect(results[0]).toMatchObject({ actual: 45_000, limit: 50_000 });
  });

  it('a malformed threshold says which part is wrong', () => {
    expect(thrownBy(InputError, () => parseThreshold('p99 50ms')).message).toMatch(/^--threshold "p99 50ms": expected METRIC<VALUE/);
    expect(thrownBy(InputError, () => parseThreshold('q99<5ms')).message).toMatch(/^--threshold "q99<5ms": unknown metric "q99"/);
    expect(thrownBy(InputError, () => parseThreshold('achieved_rate{allow}>5')).message).toMatch(/^--threshold "achieved_rate\{allow\}>5": achieved_rate takes no \{class\}/);
    expect(thrownBy(InputError, () => parseThreshold('service_p99{allow}<5ms')).message).toMatch(/service_p99 takes no \{class\}/);
    expect(thrownBy(InputError, () => parseThreshold('p99{}<5ms')).message).toBe('--threshold "p99{}<5ms": an empty {class}');
    expect(thrownBy(InputError, () => parseThreshold('p99<5 parsecs')).message).toBe('--threshold "p99<5 parsecs": "5 parsecs" is not a number, a duration (50ms) or a percentage (0.1%)');
    expect(thrownBy(InputError, () => parseThreshold('p99<5%')).message).toBe('--threshold "p99<5%": p99 is a latency: give us, ms or s');
    expect(thrownBy(InputError, () => parseThreshold('requests>5ms')).message).toBe('--threshold "requests>5ms": requests is not a latency: no ms');
    expect(thrownBy(InputError, () => parseThreshold('p99<0.9*target')).message).toBe('--threshold "p99<0.9*target": "*target" applies to achieved_rate only');
  });

  it('narrows to one outcome class; the headline latency is the answers\' (a fast error cannot pull it down)', () => {
    const results = evaluateThresholds(
      ['p99{allow}<50ms', 'max{network-error}<1s', 'max{all}<1s', 'max<1s', 'error_rate{network-error}<0.01%', 'requests{allow}>=9895', 'p99.99<100ms', 'mean<2ms'].map(parseThreshold),
      summary,
    );
    expect(results.map((r) => [r.threshold, r.ok, r.actual])).toEqual([
      ['p99{allow}<50ms', true, 45_000], ['max{network-error}<1s', false, 5_000_000], ['max{all}<1s', false, 5_000_000], ['max<1s', true, 120_000],
      ['error_rate{network-error}<0.01%', false, 5 / 9900], ['requests{allow}>=9895', true, 9895], ['p99.99<100ms', false, 110_000], ['mean<2ms', true, 1200],
    ]);
    expect(thresholdPercentiles(['p99.99<1s', 'p99<1s', 'service_p75<1s'].map(parseThreshold))).toEqual([99.99, 99, 75]);
  });

  it('a latency limit on a class with no replies fails: nothing measured is not a pass', () => {
    const allErrors: LoadSummary = { ...summary, errors: 9900, outcomes: { 'network-error': 9900 }, latencyUs: { ...summary.latencyUs, p99: 0 }, latencyUsByClass: {} };
    expect(evaluateThresholds(['p99<50ms', 'p99{allow}<50ms'].map(parseThreshold), allErrors).map((r) => r.ok)).toEqual([false, false]);
  });

  it('a class the target cannot report is refused before the run', () => {
    expect(() => checkThresholdClasses(['p99{allow}<1s', 'p99{all}<1s'].map(parseThreshold), ['allow', 'timeout'])).not.toThrow();
    expect(thrownBy(InputError, () => checkThresholdClasses([parseThreshold('p99{alow}<1s')], ['allow', 'timeout'])).message)
      .toBe('--threshold "p99{alow}<1s": unknown outcome class "alow" (this target\'s: allow, timeout, all)');
  });
});
