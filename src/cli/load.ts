/**
 * The load-mode flags every "plays the proxy" command shares, and running a target on the one
 * engine: progress on stderr, the report on stdout, files, thresholds and the exit code
 * (0 ok, 1 the run failed, 3 a threshold breached, 130 interrupted).
 */
import { writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { Command, Option } from 'commander';
import { cannotWrite, InputError } from '../shared/errors.js';
import { runLoad, type LoadOptions, type Interval } from '../load/engine.js';
import { percentileCurve } from '../load/histogram.js';
import { ProgressLine } from '../load/progress.js';
import { LONG_RUN_MS, parseDuration, parseStages, runProfile, type Stage } from '../load/schedule.js';
import { summarize, type LoadSummary } from '../load/summary.js';
import { evaluateThresholds, parseThreshold, type Threshold } from '../load/thresholds.js';
import type { ArrivalSource, LoadTarget } from '../load/target.js';
import { LoadMetrics, parseTags, type Label } from '../load/metrics.js';
import { startMetricsServer } from '../load/metrics-server.js';
import { parseHostPort } from '../shared/listen.js';
import { HlogWriter } from '../report/hlog.js';
import { renderLoadHtml } from '../report/load-html.js';
import { CSV_HEADER, csvLine, rowOf, type IntervalRow } from '../report/load-series.js';
import { renderLoadText } from '../report/load-text.js';
import { EXIT_FAILED, EXIT_OK, log, out, stdoutColors, stopRequested } from './io.js';

export const EXIT_THRESHOLD = 3;
export const EXIT_INTERRUPTED = 130;

export interface LoadFlags {
  load?: boolean;
  rate?: string;
  maxInflight?: string;
  concurrency?: string;
  pipelining?: string;
  stages?: string;
  warmup?: string;
  duration?: string;
  requests?: string;
  precise?: boolean;
  threshold: string[];
  csv?: string;
  hdrLog?: string;
  html?: string;
  yes?: boolean;
  json?: boolean;
  metricsListen?: string;
  metricsLinger?: string;
  tag: string[];
}

/** Adds the load flags; `--duration` and `--json` may already belong to the command. */
/** The flags addLoadOptions declares: they belong to load mode only. */
export const LOAD_FLAGS = [
  '--load', '--rate', '--max-inflight', '--concurrency', '--pipelining', '--stages', '--warmup', '--requests', '--precise',
  '--threshold', '--csv', '--hdr-log', '--html', '--yes', '--duration', '--metrics-listen', '--metrics-linger', '--tag',
] as const;

export function addLoadOptions(command: Command, options: { hasDuration?: boolean } = {}): Command {
  command
    .option('--load', 'load mode: many requests on the load engine, a latency report')
    .option('--rate <r>', '--load: open model, arrivals per second (the default model)')
    .option('--max-inflight <n>', '--load open model: most requests in flight (default 1000)')
    .option('--concurrency <c>', '--load: closed model with C workers, each sending again on every reply')
    .option('--pipelining <p>', '--load closed model: requests in flight per worker (default 1)')
    .option('--stages <list>', '--load: linear ramps of the rate (or concurrency), e.g. 10s:100,30s:2000,10s:0')
    .option('--warmup <duration>', '--load: a first period at the starting rate, not counted (e.g. 2s)')
    .option('--requests <n>', '--load: stop after this many measured requests')
    .option('--precise', '--load: pace on a busy loop (scheduler lateness ~0.1 ms, costs a core)')
    .option('--threshold <cond>', "--load: e.g. 'p99<50ms', 'error_rate<0.1%', 'achieved_rate>0.98*target' (repeatable; exit 3 when one is breached)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--csv <file>', '--load: write the per-second series')
    .option('--hdr-log <file>', '--load: write interval histograms in the HdrHistogram log format (for `authkit report merge`)')
    .option('--html <file>', '--load: write a self-contained HTML report')
    .option('--yes', '--load: allow a run longer than 24 h')
    .option('--metrics-listen <host:port>', '--load: serve live Prometheus metrics on GET /metrics while the command runs')
    .option('--metrics-linger <duration>', '--load: keep serving the metrics this long after the run, for a last scrape (default 0)')
    .option('--tag <key=value>', '--load: a label on every metric (repeatable; generator=... replaces the default HOSTNAME-PID)', (v: string, all: string[]) => [...all, v], [] as string[]);
  if (!options.hasDuration) command.addOption(new Option('--duration <duration>', '--load: how long to measure (default 10s)'));
  return command;
}

function positive(text: string | undefined, flag: string, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !(value > 0) || (integer && !Number.isInteger(value))) {
    throw new InputError(`${flag}: expected a ${integer ? 'whole ' : ''}number above 0, got "${text}"`);
  }
  return value;
}

export interface ParsedLoad {
  options: Omit<LoadOptions, 'drainMs' | 'signal' | 'onInterval'>;
  /** Warm-up plus the measured part, ms. */
  totalMs: number;
  thresholds: Threshold[];
  /** --metrics-listen: where to serve the live metrics, how long after the run, with which labels. */
  metrics?: MetricsPlan;
}

export interface MetricsPlan {
  listen: { host: string; port: number };
  lingerMs: number;
  labels: Label[];
}

function parseMetricsFlags(flags: LoadFlags): MetricsPlan | undefined {
  if (flags.metricsListen === undefined) {
    const without = flags.tag.length > 0 ? '--tag' : flags.metricsLinger !== undefined ? '--metrics-linger' : undefined;
    if (without) throw new InputError(`${without} applies to the live metrics: it needs --metrics-listen HOST:PORT`);
    return undefined;
  }
  return {
    listen: parseHostPort(flags.metricsListen, '--metrics-listen'),
    lingerMs: flags.metricsLinger === undefined ? 0 : parseDuration(flags.metricsLinger, '--metrics-linger'),
    labels: parseTags(flags.tag),
  };
}

/** `openRate`: a traffic model (the Xray event mix) sets the open-model rate itself; it only labels the intervals. */
export function parseLoadFlags(flags: LoadFlags, openRate?: number): ParsedLoad {
  const rate = openRate ?? positive(flags.rate, '--rate', false);
  const concurrency = positive(flags.concurrency, '--concurrency', true);
  if (rate !== undefined && concurrency !== undefined) throw new InputError('--rate (open model) and --concurrency (closed model) exclude each other');
  const stages: Stage[] | undefined = flags.stages === undefined ? undefined : parseStages(flags.stages);
  const model = concurrency !== undefined || (flags.pipelining !== undefined && rate === undefined) ? 'closed' : 'open';
  if (model === 'open' && rate === undefined && stages === undefined) throw new InputError('--load needs --rate R (open model), --concurrency C (closed model) or --stages');
  if (model === 'closed' && stages?.some((s) => !Number.isInteger(s.target))) throw new InputError('--stages: in the closed model the targets are concurrencies (whole numbers)');
  const durationMs = flags.duration === undefined ? 10_000 : parseDuration(flags.duration, '--duration');
  if (durationMs <= 0 && stages === undefined) throw new InputError('--duration: must be more than 0');
  const warmupMs = flags.warmup === undefined ? 0 : parseDuration(flags.warmup, '--warmup');
  const maxInflight = positive(flags.maxInflight, '--max-inflight', true) ?? 1000;
  const pipelining = positive(flags.pipelining, '--pipelining', true) ?? 1;
  const requests = positive(flags.requests, '--requests', true);
  const start = model === 'open' ? (rate ?? 0) : (concurrency ?? 0);
  const { totalMs } = runProfile({ start, stages, durationMs, warmupMs });
  if (totalMs > LONG_RUN_MS && !flags.yes) throw new InputError(`a ${(totalMs / 3_600_000).toFixed(1)} h run: over 24 h needs --yes`);
  const thresholds = flags.threshold.map(parseThreshold);
  const ofTarget = thresholds.find((t) => t.ofTarget);
  if (model === 'closed' && ofTarget) throw new InputError(`--threshold "${ofTarget.text}": the closed model has no target rate (use achieved_rate>N)`);
  const metrics = parseMetricsFlags(flags);
  return {
    options: {
      model, start, stages, durationMs, warmupMs, requests,
      maxInflight, pipelining, precise: flags.precise ?? false,
    },
    totalMs,
    thresholds,
    metrics,
  };
}

/** How many connections a target needs for these options. */
export function connectionsFor(parsed: ParsedLoad): { connections: number; pipelining: number } {
  const { options } = parsed;
  if (options.model === 'open') return { connections: options.maxInflight, pipelining: 1 };
  const peak = Math.max(options.start, ...(options.stages ?? []).map((s) => s.target));
  return { connections: Math.max(1, peak), pipelining: options.pipelining };
}

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
  // Every output file is opened before the run: a path that cannot be written fails now, not after it.
  const csv = flags.csv ? openFile(flags.csv, '--csv') : undefined;
  if (flags.html) closeSync(openFile(flags.html, '--html'));
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
    result = await runLoad(target, { ...parsed.options, kinds: request.kinds, drainMs: request.drainMs, signal: controller.signal, onInterval, observer: metrics }, request.source);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.finish();
    metrics?.ended();
    await target.close();
    if (csv !== undefined) closeSync(csv);
    if (!result) hlog?.abandon();
  }
  hlog?.finish(result);
  const summary = summarize(result);
  const outcomes = evaluateThresholds(parsed.thresholds, summary);
  if (flags.html) {
    const curve = percentileCurve(summary.model === 'open' ? result.response : result.service);
    writeReport(flags.html, '--html', renderLoadHtml({ title: request.title, summary, rows, curve, thresholds: outcomes, generatedAt: new Date() }));
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

function openFile(path: string, flag: string): number {
  try {
    return openSync(path, 'w');
  } catch (error) {
    throw cannotWrite(flag, path, error);
  }
}

export function writeReport(path: string, flag: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (error) {
    throw cannotWrite(flag, path, error);
  }
}
