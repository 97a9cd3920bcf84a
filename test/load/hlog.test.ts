import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hdr, newHistogram, percentilesOf, recordUs } from '../../src/load/histogram.js';
import type { LoadResult } from '../../src/load/run-types.js';
import type { Interval } from '../../src/load/intervals.js';
import { HlogWriter, mergeHlogs } from '../../src/report/hlog.js';

function randomIntervals(seed: number, count: number, epochMs = 1_795_000_000_000): Interval[] {
  let state = seed;
  const random = (): number => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: count }, (_, i) => {
    const interval: Interval = { startMs: i * 1000, endMs: (i + 1) * 1000, startEpochMs: epochMs + i * 1000, partial: false, targetRate: 500, requests: 0, errors: 0, dropped: i, response: newHistogram(), service: newHistogram() };
    for (let n = 0; n < 500; n++) {
      const service = 50 + random() ** 4 * 200_000;
      recordUs(interval.service, service);
      recordUs(interval.response, service + random() * 2000);
      interval.requests++;
    }
    interval.errors = 3;
    return interval;
  });
}

function writeLog(path: string, intervals: Interval[], startEpochMs: number): LoadResult {
  const writer = new HlogWriter(path, startEpochMs, { model: 'open' });
  const result: LoadResult = {
    model: 'open', durationMs: intervals.length * 1000, scheduled: 0, requests: 0, dropped: 0, errors: 0, unfinished: 0, outcomes: new Map(), byClass: new Map(), errorClasses: new Set(), startEpochMs, kinds: new Map(),
    response: newHistogram(), service: newHistogram(), lateness: newHistogram(), cpuUs: 1000, interrupted: false,
  };
  for (const interval of intervals) {
    result.response.add(interval.response);
    result.service.add(interval.service);
    result.requests += interval.requests;
    result.scheduled += interval.requests + interval.dropped;
    result.dropped += interval.dropped;
    result.errors += interval.errors;
    writer.interval(interval);
  }
  result.outcomes.set('allow', result.requests - result.errors).set('network-error', result.errors);
  recordUs(result.lateness, 700);
  writer.finish(result);
  return result;
}

describe('HdrHistogram logs and report merge', () => {
  const dir = mkdtempSync(join(tmpdir(), 'authkit-hlog-'));

  it('writes the standard log format: HdrHistogram\'s own reader gets the same histograms back', () => {
    const intervals = randomIntervals(7, 3);
    writeLog(join(dir, 'one.hlog'), intervals, 1_795_000_000_000);
    const text = readFileSync(join(dir, 'one.hlog'), 'utf8');
    expect(text).toMatch(/^#\[Histogram log format version 1\.3\]\n#\[StartTime: 1795000000\.000 /);
    const reader = new hdr.HistogramLogReader(text);
    const read: { tag: string; count: number; p99: number }[] = [];
    for (let h = reader.nextIntervalHistogram(); h; h = reader.nextIntervalHistogram()) read.push({ tag: h.tag, count: h.totalCount, p99: h.getValueAtPercentile(99) });
    expect(read).toEqual(intervals.flatMap((i) => [
      { tag: 'response', count: 500, p99: i.response.getValueAtPercentile(99) },
      { tag: 'service', count: 500, p99: i.service.getValueAtPercentile(99) },
    ]));
  });

  it('merging two generators\' logs equals one run that recorded everything', () => {
    const a = randomIntervals(1, 5);
    const b = randomIntervals(2, 4);
    const ra = writeLog(join(dir, 'a.hlog'), a, 1_795_000_000_000);
    const rb = writeLog(join(dir, 'b.hlog'), b, 1_795_000_000_000);
    const merged = mergeHlogs([join(dir, 'a.hlog'), join(dir, 'b.hlog')].map((name) => ({ name, text: readFileSync(name, 'utf8') })));
    const oneRun = newHistogram();
    oneRun.add(ra.response);
    oneRun.add(rb.response);
    const oneService = newHistogram();
    oneService.add(ra.service);
    oneService.add(rb.service);
    expect(merged.result.response.totalCount).toBe(4500);
    // Percentiles exactly; the max within its bucket (the encoding keeps counts per bucket).
    const same = (x: ReturnType<typeof percentilesOf>, y: ReturnType<typeof percentilesOf>): void => {
      expect({ ...x, max: 0 }).toEqual({ ...y, max: 0 });
      expect(Math.abs(x.max - y.max) / y.max).toBeLessThan(0.001);
    };
    same(percentilesOf(merged.result.response), percentilesOf(oneRun));
    same(percentilesOf(merged.result.service), percentilesOf(oneService));
    expect(merged.result.errors).toBe(27);
    expect(merged.result.dropped).toBe(10 + 6);
    expect(merged.result.outcomes.get('network-error')).toBe(27);
    expect(merged.result.durationMs).toBe(5000);
    // The series lines up on the wall clock: seconds 1-4 have both generators, second 5 only a.
    expect(merged.rows.map((r) => r.requests)).toEqual([1000, 1000, 1000, 1000, 500]);
  });

  it('places each interval in the wall-clock second it measured: generators started 3 s apart do not mix their seconds', () => {
    const epoch = 1_795_000_000_000;
    // a measures seconds 0-4 of the wall clock; b, started 3 s later, seconds 3-6; b stalls (no replies) in its first second.
    const a = randomIntervals(3, 5, epoch);
    const b = randomIntervals(4, 4, epoch + 3000);
    b[0]!.requests = 0;
    b[0]!.response.reset();
    b[0]!.service.reset();
    writeLog(join(dir, 'wall-a.hlog'), a, epoch);
    writeLog(join(dir, 'wall-b.hlog'), b, epoch + 3000);
    const merged = mergeHlogs(['wall-a.hlog', 'wall-b.hlog'].map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') })));
    expect(merged.rows.map((r) => [r.t, r.requests])).toEqual([[1, 500], [2, 500], [3, 500], [4, 500], [5, 1000], [6, 500], [7, 500]]);
  });

  it('refuses a log that was cut off, naming the file', () => {
    expect(() => mergeHlogs([{ name: 'cut.hlog', text: '#[Histogram log format version 1.3]\n' }])).toThrow('cut.hlog: no "#authkit-summary" line: not a complete authkit --hdr-log (was the run cut off?)');
    expect(() => mergeHlogs([{ name: 'bad.hlog', text: 'Tag=response,1.0,1.0,2.0,!!notbase64!!\n' }])).toThrow('bad.hlog:1: a histogram that does not decode');
  });
});
