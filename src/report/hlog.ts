/**
 * `--hdr-log FILE`: interval histograms in the HdrHistogram log format (v1.3; readable by
 * HdrHistogram's own LogReader, HistogramLogAnalyzer and `authkit report merge`), values in µs,
 * Interval_Max in ms. Two tagged histograms per interval: `response` (from the intended send)
 * and `service`. The counters a histogram cannot carry (errors, dropped, outcomes) travel in
 * `#authkit` comment lines, which every log reader skips.
 */
import { closeSync, writeSync } from 'node:fs';
import { hdr, newHistogram, valueOrZero, type Histogram } from '../load/histogram.js';
import { emptyLoadResult, type LoadResult } from '../load/run-types.js';
import { type Interval } from '../load/intervals.js';
import { InputError } from '../shared/errors.js';
import { openForWrite } from '../shared/files.js';
import type { IntervalRow } from './load-series.js';

export class HlogWriter {
  private readonly fd: number;
  private readonly writer: InstanceType<typeof hdr.HistogramLogWriter>;

  /** `startEpochMs`: when the measured part started (intervals are placed on the wall clock). */
  constructor(path: string, startEpochMs: number, meta: Record<string, unknown>) {
    this.fd = openForWrite(path, '--hdr-log');
    this.writer = new hdr.HistogramLogWriter((text) => writeSync(this.fd, text));
    this.writer.outputLogFormatVersion();
    this.writer.outputStartTime(startEpochMs);
    this.writer.outputComment(`authkit ${JSON.stringify({ version: 1, ...meta })}`);
    this.writer.outputLegend();
  }

  interval(interval: Interval): void {
    // Absolute wall-clock times: generators' logs are merged second by second of the wall clock.
    const start = interval.startEpochMs / 1000;
    const end = (interval.startEpochMs + interval.endMs - interval.startMs) / 1000;
    this.writer.outputComment(`authkit-interval ${JSON.stringify({ requests: interval.requests, errors: interval.errors, dropped: interval.dropped, targetRate: interval.targetRate, partial: interval.partial })}`);
    for (const [tag, histogram] of [['response', interval.response], ['service', interval.service]] as const) {
      histogram.tag = tag;
      this.writer.outputIntervalHistogram(histogram, start, end, 1000);
    }
  }

  /** The run never happened (the target could not be reached): close the file as it is. */
  abandon(): void {
    closeSync(this.fd);
  }

  finish(result: LoadResult): void {
    const lateness = result.lateness.totalCount > 0 ? hdr.encodeIntoCompressedBase64(result.lateness) : '';
    this.writer.outputComment(`authkit-summary ${JSON.stringify({
      model: result.model, durationMs: result.durationMs, scheduled: result.scheduled, dropped: result.dropped,
      errors: result.errors, unfinished: result.unfinished, cpuUs: result.cpuUs, outcomes: Object.fromEntries(result.outcomes), lateness,
      byClass: Object.fromEntries([...result.byClass].map(([outcome, histogram]) => [outcome, hdr.encodeIntoCompressedBase64(histogram)])),
      errorClasses: [...result.errorClasses], interrupted: result.interrupted,
    })}`);
    closeSync(this.fd);
  }
}

interface FileSummary {
  model: 'open' | 'closed';
  durationMs: number;
  scheduled: number;
  dropped: number;
  errors: number;
  unfinished: number;
  cpuUs: number;
  outcomes: Record<string, number>;
  lateness: string;
  /** Latency per outcome class (logs written before 0.2 have none). */
  byClass?: Record<string, string>;
  errorClasses?: string[];
  interrupted?: boolean;
}

export interface MergedLogs {
  result: LoadResult;
  rows: IntervalRow[];
  files: number;
}

/**
 * Adds up the logs of several generators: histograms per tag, counters, and the per-second
 * series aligned on the wall clock (generators started together by a job runner line up).
 */
export function mergeHlogs(logs: readonly { name: string; text: string }[]): MergedLogs {
  const result = emptyLoadResult('open');
  const bySecond = new Map<number, { requests: number; errors: number; dropped: number; targetRate: number; response: Histogram; service: Histogram; seconds: number }>();
  let peakCpuPercent = 0;
  for (const log of logs) {
    const lines = log.text.split('\n');
    let sawSummary = false;
    let meta: { requests: number; errors: number; dropped: number; targetRate: number } | undefined;
    for (const [index, raw] of lines.entries()) {
      const line = raw.trim();
      const where = `${log.name}:${index + 1}`;
      if (line.startsWith('#authkit-interval ')) {
        meta = parseJsonComment<NonNullable<typeof meta>>(line, where);
      } else if (line.startsWith('#authkit-summary ')) {
        const summary = parseJsonComment<FileSummary>(line, where);
        sawSummary = true;
        result.model = summary.model;
        result.durationMs = Math.max(result.durationMs, summary.durationMs);
        result.scheduled += summary.scheduled;
        result.dropped += summary.dropped;
        result.errors += summary.errors;
        result.unfinished += summary.unfinished;
        result.cpuUs += summary.cpuUs;
        // Generators run on their own machines: the busiest one says whether one was the limit.
        if (summary.durationMs > 0) peakCpuPercent = Math.max(peakCpuPercent, (summary.cpuUs / 1000 / summary.durationMs) * 100);
        for (const [outcome, n] of Object.entries(summary.outcomes)) result.outcomes.set(outcome, (result.outcomes.get(outcome) ?? 0) + n);
        if (summary.lateness) result.lateness.add(decodeHistogram(summary.lateness, where));
        for (const [outcome, base64] of Object.entries(summary.byClass ?? {})) {
          let histogram = result.byClass.get(outcome);
          if (!histogram) result.byClass.set(outcome, (histogram = newHistogram()));
          histogram.add(decodeHistogram(base64, where));
        }
        for (const outcome of summary.errorClasses ?? []) result.errorClasses.add(outcome);
        result.interrupted ||= summary.interrupted ?? false;
      } else if (line.startsWith('Tag=') || /^\d/.test(line)) {
        const parts = line.split(',');
        const tag = parts[0]!.startsWith('Tag=') ? parts.shift()!.slice(4) : 'response';
        if (parts.length !== 4) throw new InputError(`${where}: an interval line without its 4 fields`);
        const start = Number(parts[0]);
        const histogram = decodeHistogram(parts[3]!, where);
        // Intervals land in the wall-clock second they measured, whichever generator wrote them.
        const second = Math.floor(start + 1e-6);
        const length = Number(parts[1]) || 1;
        let slot = bySecond.get(second);
        if (!slot) bySecond.set(second, (slot = { requests: 0, errors: 0, dropped: 0, targetRate: 0, response: newHistogram(), service: newHistogram(), seconds: length }));
        slot.seconds = Math.max(slot.seconds, length);
        if (tag === 'response') {
          result.response.add(histogram);
          slot.response.add(histogram);
          result.requests += histogram.totalCount;
          if (meta) {
            slot.requests += meta.requests;
            slot.errors += meta.errors;
            slot.dropped += meta.dropped;
            slot.targetRate += meta.targetRate;
          }
        } else if (tag === 'service') {
          result.service.add(histogram);
          slot.service.add(histogram);
        }
      }
    }
    if (!sawSummary) throw new InputError(`${log.name}: no "#authkit-summary" line: not a complete authkit --hdr-log (was the run cut off?)`);
  }
  const seconds = [...bySecond].sort(([a], [b]) => a - b);
  const first = seconds[0]?.[0] ?? 0;
  const rows = seconds.map(([second, slot]) => {
    const response = slot.response;
    return {
      t: Math.round((second - first + slot.seconds) * 1000) / 1000, targetRate: Math.round(slot.targetRate * 10) / 10, achievedRate: Math.round((slot.requests / slot.seconds) * 10) / 10,
      requests: slot.requests, errors: slot.errors, dropped: slot.dropped,
      p50Us: valueOrZero(response, 50), p99Us: valueOrZero(response, 99),
      maxUs: response.maxValue, serviceP99Us: valueOrZero(slot.service, 99),
      seconds: slot.seconds, startEpochS: second,
    };
  });
  result.peakCpuPercent = peakCpuPercent;
  return { result, rows, files: logs.length };
}

function parseJsonComment<T>(line: string, where: string): T {
  try {
    return JSON.parse(line.slice(line.indexOf(' ') + 1)) as T;
  } catch {
    throw new InputError(`${where}: an #authkit comment that is not JSON`);
  }
}

function decodeHistogram(base64: string, where: string): Histogram {
  try {
    return hdr.decodeFromCompressedBase64(base64, 32, false);
  } catch {
    throw new InputError(`${where}: a histogram that does not decode`);
  }
}
