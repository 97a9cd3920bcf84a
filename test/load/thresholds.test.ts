import { describe, expect, it } from 'vitest';
import { evaluateThresholds, parseThreshold } from '../../src/load/thresholds.js';
import type { LoadSummary } from '../../src/load/summary.js';
import { thrownBy } from '../helpers.js';
import { InputError } from '../../src/shared/errors.js';

const summary: LoadSummary = {
  model: 'open', targetRate: 1000, achievedRate: 990, durationS: 10, requests: 9900, dropped: 100, errors: 5, errorRate: 5 / 9900, unfinished: 0,
  outcomes: { allow: 9895, 'network-error': 5 }, latencyUs: { p50: 800, p90: 2000, p99: 45_000, p999: 90_000, max: 120_000 },
  serviceUs: { p50: 300, p90: 900, p99: 4000, p999: 9000, max: 100_000 }, schedulerLatenessUs: { p50: 600, p99: 1800 },
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
    expect(thrownBy(InputError, () => parseThreshold('p98<5ms')).message).toMatch(/^--threshold "p98<5ms": unknown metric "p98"/);
    expect(thrownBy(InputError, () => parseThreshold('p99<5 parsecs')).message).toBe('--threshold "p99<5 parsecs": "5 parsecs" is not a number, a duration (50ms) or a percentage (0.1%)');
    expect(thrownBy(InputError, () => parseThreshold('p99<5%')).message).toBe('--threshold "p99<5%": p99 is a latency: give us, ms or s');
    expect(thrownBy(InputError, () => parseThreshold('requests>5ms')).message).toBe('--threshold "requests>5ms": requests is not a latency: no ms');
    expect(thrownBy(InputError, () => parseThreshold('p99<0.9*target')).message).toBe('--threshold "p99<0.9*target": "*target" applies to achieved_rate only');
  });
});
