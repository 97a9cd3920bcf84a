import { describe, expect, it } from 'vitest';
import { renderLoadHtml } from '../../src/report/load-html.js';
import type { LoadSummary } from '../../src/load/summary.js';
import { checkWellFormed } from './html.js';

const p = (scale: number): LoadSummary['latencyUs'] => ({ p50: 800 * scale, p90: 2000 * scale, p99: 45_000 * scale, p999: 90_000 * scale, max: 120_000 * scale, min: 90, mean: 1200 * scale, stddev: 3000 });
const summary: LoadSummary = {
  model: 'open', targetRate: 1000, achievedRate: 850, durationS: 6.2, requests: 5270, dropped: 120, errors: 70, errorRate: 77 / 5277, unfinished: 7,
  outcomes: { allow: 5200, timeout: 70 }, latencyUs: p(1), latencyUsAll: p(2), latencyUsByClass: { allow: p(1), timeout: p(40) },
  serviceUs: p(0.5), percentiles: [50, 90, 99, 99.9], schedulerLatenessUs: { p50: 600, p99: 1800 },
  clientCpuUsPerRequest: 12, clientCpuPercent: 12, generatorBound: false, interrupted: true,
  kinds: { authorization: { requests: 3000, outcomes: { allow: 2990, timeout: 10 }, latencyUs: p(1) }, heartbeat: { requests: 2270, outcomes: { allow: 2210, timeout: 60 }, latencyUs: p(3) } },
};
const rows = [1, 2, 3].map((t) => ({ t, targetRate: 1000, achievedRate: 850, requests: 850, errors: 10, dropped: 40, p50Us: 800, p99Us: 45_000, maxUs: 120_000, serviceP99Us: 20_000, seconds: 1, startEpochS: 1_795_000_000 + t }));

describe('the HTML load report', () => {
  const html = renderLoadHtml({
    title: 'xray-sim --load wiki event mix', summary, rows, curve: [{ percentile: 50, us: 800 }, { percentile: 99, us: 45_000 }],
    thresholds: [{ threshold: 'p99<50ms', ok: true, actual: 45_000, limit: 50_000 }, { threshold: 'error_rate<0.1%', ok: false, actual: 77 / 5277, limit: 0.001 }],
    generatedAt: new Date('2026-12-05T21:00:00Z'),
    settings: [['command', 'xray-sim --load wiki event mix'], ['target', 'http://127.0.0.1:8080/auth, wiki dialect'], ['model', 'open (poisson arrivals)'], ['authkit', '0.1.0']],
  });

  it('is well formed and tells the whole story', () => {
    checkWellFormed(html);
    // An interrupted run does not look complete; a short rate is said.
    expect(html).toContain('Interrupted (Ctrl-C)');
    expect(html).toContain('Achieved 85.0 % of the target rate');
    // Each threshold with its actual value.
    expect(html).toMatch(/<th>p99&#60;50ms<\/th><td>pass<\/td><td>45\.0 ms<\/td><td>50\.0 ms<\/td>/);
    expect(html).toMatch(/<th>error_rate&#60;0\.1%<\/th><td>FAIL<\/td><td>1\.459 %<\/td><td>0\.100 %<\/td>/);
    // Dropped, unfinished and the error rate in %.
    expect(html).toMatch(/dropped \(never sent\)<\/th><td>120</);
    expect(html).toMatch(/unfinished \(no reply by the end\)<\/th><td>7</);
    expect(html).toContain('70 (1.46 %)');
    // Latency by outcome and per kind, and the settings.
    expect(html).toMatch(/latency by outcome/);
    expect(html).toMatch(/<th>timeout<\/th><td>/);
    expect(html).toMatch(/<th>heartbeat<\/th>.*<td>2,270<\/td><td>allow 2210, timeout 60<\/td>/);
    expect(html).toMatch(/How it was run.*<th>target<\/th><td class="left">http:\/\/127\.0\.0\.1:8080\/auth, wiki dialect<\/td>/s);
    // Dropped per second on the throughput chart.
    expect(html).toMatch(/<span class="key">.*dropped<\/span>/);
  });
});
