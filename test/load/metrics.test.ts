import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../../src/load/run-types.js';
import type { Interval } from '../../src/load/intervals.js';
import { newHistogram } from '../../src/load/histogram.js';
import { escapeLabelValue, LATENCY_BUCKETS_S, LoadMetrics, METRICS_CONTENT_TYPE, parseTags } from '../../src/load/metrics.js';
import { startMetricsServer } from '../../src/load/metrics-server.js';
import { InputError } from '../../src/shared/errors.js';
import { thrownBy } from '../helpers.js';

function record(latencyMs: number, outcome = 'allow', failed = false): RequestRecord {
  return { intendedMs: 0, sentMs: 0, doneMs: latencyMs, outcome, failed, kind: undefined };
}

function interval(startMs: number, endMs: number, requests: number, targetRate: number): Interval {
  return { startMs, endMs, targetRate, requests, errors: 0, dropped: 0, response: newHistogram(), service: newHistogram() };
}

describe('LoadMetrics', () => {
  it('renders a small registry exactly', () => {
    const metrics = new LoadMetrics([['generator', 'g1'], ['region', 'eu']], { targetRate: 100, bucketsS: [0.001, 0.01] });
    for (let i = 0; i < 4; i++) metrics.sent();
    metrics.completed(record(0.5));
    metrics.completed(record(5, 'deny'));
    metrics.completed(record(50, 'timeout', true));
    metrics.dropped();
    metrics.interval(interval(0, 500, 40, 90));
    expect(metrics.render()).toBe([
      '# HELP authkit_load_requests_total Measured requests that ended, by outcome class.',
      '# TYPE authkit_load_requests_total counter',
      'authkit_load_requests_total{generator="g1",region="eu",class="allow"} 1',
      'authkit_load_requests_total{generator="g1",region="eu",class="deny"} 1',
      'authkit_load_requests_total{generator="g1",region="eu",class="timeout"} 1',
      '# HELP authkit_load_errors_total Measured requests whose outcome the target counts as an error.',
      '# TYPE authkit_load_errors_total counter',
      'authkit_load_errors_total{generator="g1",region="eu"} 1',
      '# HELP authkit_load_dropped_total Arrivals dropped: max-inflight reached and the queue full.',
      '# TYPE authkit_load_dropped_total counter',
      'authkit_load_dropped_total{generator="g1",region="eu"} 1',
      '# HELP authkit_load_requests_in_flight Measured requests sent and not yet ended.',
      '# TYPE authkit_load_requests_in_flight gauge',
      'authkit_load_requests_in_flight{generator="g1",region="eu"} 1',
      "# HELP authkit_load_target_rate The schedule's arrival rate, requests per second (open model).",
      '# TYPE authkit_load_target_rate gauge',
      'authkit_load_target_rate{generator="g1",region="eu"} 90',
      '# HELP authkit_load_achieved_rate Requests ended per second over the last completed interval (about a second).',
      '# TYPE authkit_load_achieved_rate gauge',
      'authkit_load_achieved_rate{generator="g1",region="eu"} 80',
      '# HELP authkit_load_latency_seconds Response time from the intended send time (open model) or the send (closed model), seconds.',
      '# TYPE authkit_load_latency_seconds histogram',
      'authkit_load_latency_seconds_bucket{generator="g1",region="eu",le="0.001"} 1',
      'authkit_load_latency_seconds_bucket{generator="g1",region="eu",le="0.01"} 2',
      'authkit_load_latency_seconds_bucket{generator="g1",region="eu",le="+Inf"} 3',
      'authkit_load_latency_seconds_sum{generator="g1",region="eu"} 0.0555',
      'authkit_load_latency_seconds_count{generator="g1",region="eu"} 3',
      '',
    ].join('\n'));
  });

  it('histogram buckets are cumulative, a value on a bound counts in it, 100 µs to 10 s', () => {
    expect(LATENCY_BUCKETS_S[0]).toBe(0.0001);
    expect(LATENCY_BUCKETS_S[LATENCY_BUCKETS_S.length - 1]).toBe(10);
    const metrics = new LoadMetrics([['generator', 'g']]);
    for (const ms of [0.05, 0.1, 0.2, 1, 1, 999, 10_000, 10_001, 60_000]) metrics.completed(record(ms));
    const buckets = [...metrics.render().matchAll(/_bucket\{generator="g",le="([^"]+)"\} (\d+)/g)].map((m) => [m[1], Number(m[2])]);
    expect(buckets.map(([le]) => le)).toEqual([...LATENCY_BUCKETS_S.map(String), '+Inf']);
    const count = (le: string): number => buckets.find(([l]) => l === le)![1] as number;
    expect([count('0.0001'), count('0.00025'), count('0.001'), count('1'), count('10'), count('+Inf')]).toEqual([2, 3, 5, 6, 7, 9]);
    const values = buckets.map(([, n]) => n as number);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(metrics.render()).toMatch(/_count\{generator="g"\} 9\n$/);
  });

  it('the closed model has no target rate; the end of the run zeroes the gauges, not the counters', () => {
    const metrics = new LoadMetrics([['generator', 'g']]);
    expect(metrics.render()).not.toMatch(/target_rate/);
    metrics.sent();
    metrics.sent();
    metrics.completed(record(1));
    metrics.interval(interval(0, 1000, 7, 0));
    expect(metrics.render()).toMatch(/in_flight\{generator="g"\} 1\n[^]*achieved_rate\{generator="g"\} 7\n/);
    metrics.ended();
    expect(metrics.render()).toMatch(/in_flight\{generator="g"\} 0\n[^]*achieved_rate\{generator="g"\} 0\n/);
    expect(metrics.render()).toMatch(/requests_total\{generator="g",class="allow"\} 1\n/);
  });

  it('escapes backslash, double quote and line feed in label values', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const metrics = new LoadMetrics([['generator', 'x"y'], ['note', 'back\\slash\nline']]);
    metrics.completed(record(1, 'odd"class'));
    expect(metrics.render()).toContain('authkit_load_requests_total{generator="x\\"y",note="back\\\\slash\\nline",class="odd\\"class"} 1\n');
  });
});

describe('parseTags', () => {
  it('generator defaults to HOSTNAME-PID; a tag may set it; values keep their = signs', () => {
    expect(parseTags([])).toEqual([['generator', `${hostname()}-${process.pid}`]]);
    expect(parseTags(['region=eu', 'generator=gen-a', 'query=a=b'], 'default')).toEqual([['generator', 'gen-a'], ['region', 'eu'], ['query', 'a=b']]);
  });

  it.each([
    ['region', /expected KEY=VALUE/],
    ['=eu', /expected KEY=VALUE/],
    ['region=', /expected KEY=VALUE/],
    ['1region=eu', /"1region" is not a Prometheus label name/],
    ['re-gion=eu', /"re-gion" is not a Prometheus label name/],
    ['__name__=x', /"__name__" is not a Prometheus label name/],
    ['class=x', /"class" is a label of the metrics themselves/],
    ['le=x', /"le" is a label of the metrics themselves/],
  ])('refuses %s', (tag, message) => {
    expect(thrownBy(InputError, () => parseTags([tag])).message).toMatch(message);
  });

  it('refuses a key given twice', () => {
    expect(thrownBy(InputError, () => parseTags(['a=1', 'a=2'])).message).toBe('--tag: a given twice');
  });
});

function get(url: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the metrics server', () => {
  it('serves /metrics in the 0.0.4 text format, 404 elsewhere, and closes with a scraper still connected', async () => {
    let scrapes = 0;
    const server = await startMetricsServer(() => `m ${++scrapes}\n`, { host: '127.0.0.1', port: 0 });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(await get(server.url)).toEqual({ status: 200, type: METRICS_CONTENT_TYPE, body: 'm 1\n' });
    expect(await get(`${server.url}?name[]=x`)).toMatchObject({ status: 200, body: 'm 2\n' });
    expect((await get(server.url.replace('/metrics', '/'))).status).toBe(404);
    expect((await get(server.url, 'POST')).status).toBe(405);
    // A keep-alive connection, as Prometheus holds one, must not keep the server open.
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve) => request(server.url, { agent }, (res) => res.resume().on('end', resolve)).end());
    await server.close();
    agent.destroy();
    await expect(get(server.url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a port in use is one InputError line', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    try {
      const error = await startMetricsServer(() => '', { host: '127.0.0.1', port }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InputError);
      expect((error as Error).message).toBe(`cannot listen on 127.0.0.1:${port}: address already in use`);
    } finally {
      busy.close();
    }
  });
});
