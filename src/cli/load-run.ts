/**
 * Running a target on the one engine from the command line: progress on stderr, the report on
 * stdout, the files and the live metrics, thresholds and the exit code (0 ok, 1 the run failed,
 * 3 a threshold breached, 130 interrupted).
 */
import { writeFileSync, writeSync, closeSync } from 'node:fs';
import { cannotWrite } from '../shared/errors.js';
import { openForWrite } from '../shared/files.js';
import { runLoad } from '../load/engine.js';
import { type LoadObserver } from '../load/run-types.js';
import { type Interval } from '../load/intervals.js';
import { NdjsonWriter, RawWriter } from '../report/streams.js';
import { percentileCurve } from '../load/histogram.js';
import { ProgressLine } from '../load/progress.js';
import { summarize, type LoadSummary } from '../load/summary.js';
import { checkThresholdClasses, evaluateThresholds, thresholdPercentiles } from '../load/thresholds.js';
import type { ArrivalSource, LoadTarget } from '../load/target.js';
import { LoadMetrics } from '../load/metrics.js';
import { startMetricsServer } from '../load/metrics-server.js';
import { HlogWriter } from '../report/hlog.js';
import { renderLoadHtml } from '../report/load-html.js';
import { CSV_HEADER, csvLine, rowOf, type IntervalRow } from '../report/load-series.js';
import { renderLoadText } from '../report/load-text.js';
import { EXIT_FAILED, EXIT_OK, log, out, stdoutColors, stopRequested } from './io.js';
import { packageVersion } from '../shared/version.js';

import { EXIT_INTERRUPTED, EXIT_THRESHOLD, type LoadFlags, type ParsedLoad } from './load.js';

export interface LoadRunRequest<Op> {
  title: string;
  target: LoadTarget<Op>;
  parsed: ParsedLoad;
  flags: LoadFlags;
  drainMs: number;
  source?: ArrivalSource<Op>;
  kinds?: readonly string[];
  /** Printed on stderr before the run starts (the expected rates of an event mix). */
  preamble?: string[];
  /** What the HTML report says of the target (where, its timeout), after the command. */
  settings?: [string, string][];
}

/** How the run was made, for the HTML report: the command, the target, then the engine's settings. */
function runSettings(request: LoadRunRequest<unknown>, startEpochMs: number): [string, string][] {
  const { parsed, flags } = request;
  const o = parsed.options;
  const list: [string, string | undefined][] = [
    ['command', request.title],
    ...(request.settings ?? []),
    ['model', o.model === 'open' ? `open (${o.arrivals ?? 'uniform'} arrivals)` : 'closed'],
    [o.model === 'open' ? 'rate' : 'concurrency', o.stages ? `stages ${flags.stages}` : String(o.start)],
    ['duration', o.stages ? undefined : `${o.durationMs / 1000} s`],
    ['warm-up', `${o.warmupMs / 1000} s`],
    [o.model === 'open' ? 'max in flight' : 'pipelining', String(o.model === 'open' ? o.maxInflight : o.pipelining)],
    ['requests', o.requests === undefined ? undefined : String(o.requests)],
    ['thresholds', parsed.thresholds.length > 0 ? parsed.thresholds.map((t) => t.text).join(', ') : undefined],
    ['started', new Date(startEpochMs).toISOString()],
    ['authkit', packageVersion()],
  ];
  return list.filter((entry): entry is [string, string] => entry[1] !== undefined);
}

/**
 * Runs the load and reports it. With --metrics-listen the metrics are served from before the run
 * until the command returns: after the report, for --metrics-linger more (a last scrape sees the
 * final counts; Ctrl-C cuts it short), then the server closes and holds nothing open.
 */
export async function runLoadCli<Op>(request: LoadRunRequest<Op>): Promise<number> {
  const plan = request.parsed.metrics;
  if (!plan) return runAndReport(request);
  const { options } = request.parsed;
  const metrics = new LoadMetrics(plan.labels, { targetRate: options.model === 'open' ? options.start : undefined });
  const server = await startMetricsServer(() => metrics.render(), plan.listen);
  log(`metrics: ${server.url}`);
  let code: number | undefined;
  try {
    code = await runAndReport(request, metrics);
    return code;
  } finally {
    if (code !== undefined && plan.lingerMs > 0) await linger(plan.lingerMs);
    await server.close();
  }
}

async function linger(ms: number): Promise<void> {
  const done = new AbortController();
  const timer = setTimeout(() => done.abort(), ms);
  await stopRequested(done.signal);
  clearTimeout(timer);
}

async function runAndReport<Op>(request: LoadRunRequest<Op>, metrics?: LoadMetrics): Promise<number> {
  const { target, parsed, flags } = request;
  checkThresholdClasses(parsed.thresholds, target.classes);
  // Every output file is opened before the run: a path that cannot be written fails now, not after it.
  const csv = flags.csv ? openForWrite(flags.csv, '--csv') : undefined;
  const ndjson = flags.ndjson ? new NdjsonWriter(flags.ndjson) : undefined;
  const raw = flags.raw ? new RawWriter(flags.raw) : undefined;
  if (flags.html) closeSync(openForWrite(flags.html, '--html'));
  const hlog = flags.hdrLog ? new HlogWriter(flags.hdrLog, Date.now() + parsed.options.warmupMs, { model: parsed.options.model }) : undefined;
  const controller = new AbortController();
  const onSignal = (): void => {
    log('\ninterrupted: stopping, waiting for the requests in flight');
    controller.abort();
  };
  const progress = new ProgressLine({ totalMs: parsed.totalMs - parsed.options.warmupMs, tty: process.stderr.isTTY === true, write: (t) => process.stderr.write(t) });
  const rows: IntervalRow[] = [];
  const onInterval = (interval: Interval): void => {
    const row = rowOf(interval);
    rows.push(row);
    if (csv !== undefined) writeSync(csv, `${csvLine(row)}\n`);
    hlog?.interval(interval);
    ndjson?.interval(row, interval.partial);
    metrics?.interval(interval);
    progress.update(interval);
  };
  let result;
  try {
    if (csv !== undefined) writeSync(csv, `${CSV_HEADER}\n`);
    try {
      await target.open();
    } catch (error) {
      log(`error: ${(error as Error).message}`);
      return EXIT_FAILED;
    }
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    for (const line of request.preamble ?? []) log(line);
    if (parsed.options.warmupMs > 0) log(`warming up for ${parsed.options.warmupMs / 1000} s (not counted)`);
    result = await runLoad(target, { ...parsed.options, kinds: request.kinds, drainMs: request.drainMs, signal: controller.signal, onInterval, observer: bothObservers(raw, metrics) }, request.source);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.finish();
    metrics?.ended();
    await target.close();
    if (csv !== undefined) closeSync(csv);
    ndjson?.close();
    raw?.close();
    if (!result) hlog?.abandon();
  }
  hlog?.finish(result);
  const summary = summarize(result, parsed.percentiles, thresholdPercentiles(parsed.thresholds));
  const outcomes = evaluateThresholds(parsed.thresholds, summary);
  if (flags.html) {
    const curve = percentileCurve(summary.model === 'open' ? result.response : result.service);
    writeReport(flags.html, '--html', renderLoadHtml({ title: request.title, summary, rows, curve, thresholds: outcomes, generatedAt: new Date(), settings: runSettings(request, result.startEpochMs) }));
  }
  if (flags.json) out(JSON.stringify({ ...summary, thresholds: outcomes }));
  else out(renderLoadText(summary, outcomes, stdoutColors(), request.title));
  return loadExitCode(summary, outcomes);
}

export function loadExitCode(summary: LoadSummary, thresholds: readonly { ok: boolean; threshold: string }[]): number {
  if (summary.interrupted) return EXIT_INTERRUPTED;
  if (summary.requests === 0) {
    log(`error: no request got a reply${summary.unfinished + summary.dropped > 0 ? ` (${summary.unfinished} unfinished, ${summary.dropped} dropped)` : ''}`);
    return EXIT_FAILED;
  }
  if (summary.errors === summary.requests) {
    log('error: every request failed');
    return EXIT_FAILED;
  }
  const breached = thresholds.filter((t) => !t.ok);
  for (const t of breached) log(`threshold breached: ${t.threshold}`);
  if (breached.length > 0) return EXIT_THRESHOLD;
  return EXIT_OK;
}


export function writeReport(path: string, flag: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (error) {
    throw cannotWrite(flag, path, error);
  }
}

/** The raw file and the live metrics both watch the run: the engine takes one observer. */
function bothObservers(a: LoadObserver | undefined, b: LoadObserver | undefined): LoadObserver | undefined {
  if (!a || !b) return a ?? b;
  return {
    start: (epochMs) => { a.start?.(epochMs); b.start?.(epochMs); },
    sent: () => { a.sent?.(); b.sent?.(); },
    completed: (record) => { a.completed?.(record); b.completed?.(record); },
    dropped: () => { a.dropped?.(); b.dropped?.(); },
  };
}
