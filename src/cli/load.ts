/**
 * The load-mode flags every "plays the proxy" command shares, and running a target on the one
 * engine: progress on stderr, the report on stdout, files, thresholds and the exit code
 * (0 ok, 1 the run failed, 3 a threshold breached, 130 interrupted).
 */
import { writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { Command, Option } from 'commander';
import { cannotWrite, InputError } from '../shared/errors.js';
import { runLoad, type LoadOptions, type Interval } from '../load/engine.js';
import { NdjsonWriter, RawWriter } from '../report/streams.js';
import { DEFAULT_PERCENTILES, percentileCurve } from '../load/histogram.js';
import { ProgressLine } from '../load/progress.js';
import { LONG_RUN_MS, parseDuration, parseStages, runProfile, type ArrivalProcess, type Stage } from '../load/schedule.js';
import { summarize, type LoadSummary } from '../load/summary.js';
import { checkThresholdClasses, evaluateThresholds, parseThreshold, thresholdPercentiles, type Threshold } from '../load/thresholds.js';
import type { ArrivalSource, LoadTarget } from '../load/target.js';
import { HlogWriter } from '../report/hlog.js';
import { renderLoadHtml } from '../report/load-html.js';
import { CSV_HEADER, csvLine, rowOf, type IntervalRow } from '../report/load-series.js';
import { renderLoadText } from '../report/load-text.js';
import { EXIT_FAILED, EXIT_OK, log, out, stdoutColors } from './io.js';
import { packageVersion } from '../shared/version.js';

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
  percentiles?: string;
  arrivals?: string;
  ndjson?: string;
  raw?: string;
}

/** Adds the load flags; `--duration` and `--json` may already belong to the command. */
/** The flags addLoadOptions declares: they belong to load mode only. */
export const LOAD_FLAGS = [
  '--load', '--rate', '--max-inflight', '--concurrency', '--pipelining', '--stages', '--warmup', '--requests', '--precise',
  '--threshold', '--csv', '--hdr-log', '--html', '--yes', '--duration', '--percentiles', '--arrivals', '--ndjson', '--raw',
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
    .option('--arrivals <process>', '--load open model: uniform (evenly spaced, the default) or poisson (exponential gaps at the same rate)')
    .option('--threshold <cond>', "--load: e.g. 'p99<50ms', 'p99{allow}<20ms', 'error_rate<0.1%', 'error_rate{timeout}<0.01%', 'achieved_rate>0.98*target' (repeatable; exit 3 when one is breached)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--percentiles <list>', '--load: the percentiles reported, e.g. 50,90,99,99.9,99.99 (default 50,90,99,99.9)')
    .option('--csv <file>', '--load: write the per-second series')
    .option('--hdr-log <file>', '--load: write interval histograms in the HdrHistogram log format (for `authkit report merge`)')
    .option('--html <file>', '--load: write a self-contained HTML report')
    .option('--ndjson <file>', '--load: write one JSON line per interval while the run goes')
    .option('--raw <file>', '--load: write one CSV line per request (intended and send time, latencies, outcome, kind)')
    .option('--yes', '--load: allow a run longer than 24 h');
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
  /** The percentiles to report (--percentiles). */
  percentiles: number[];
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
  return {
    options: {
      model, start, stages, durationMs, warmupMs, requests,
      maxInflight, pipelining, precise: flags.precise ?? false, arrivals: parseArrivals(flags.arrivals, model),
    },
    totalMs,
    thresholds,
    percentiles: parsePercentiles(flags.percentiles),
  };
}

function parsePercentiles(text: string | undefined): number[] {
  if (text === undefined) return [...DEFAULT_PERCENTILES];
  const list = text.split(',').map((part) => part.trim());
  const values = list.map(Number);
  const bad = list.find((part, i) => !/^\d{1,2}(\.\d{1,6})?$|^100$/.test(part) || !(values[i]! > 0));
  if (bad !== undefined || list.length === 0) throw new InputError(`--percentiles: expected percentiles above 0 and up to 100, comma-separated (e.g. 50,90,99,99.9,99.99), got "${bad ?? text}"`);
  return [...new Set(values)].sort((a, b) => a - b);
}

function parseArrivals(text: string | undefined, model: 'open' | 'closed'): ArrivalProcess | undefined {
  if (text === undefined) return undefined;
  if (text !== 'uniform' && text !== 'poisson') throw new InputError(`--arrivals: expected uniform or poisson, got "${text}"`);
  if (model === 'closed') throw new InputError('--arrivals: the closed model has no arrivals (each worker sends on every reply)');
  return text;
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
    [o.model === 'open' ? 'rate' : 'concurrency', o.stages ? `${o.start}, then stages ${flags.stages}` : String(o.start)],
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

export async function runLoadCli<Op>(request: LoadRunRequest<Op>): Promise<number> {
  const { target, parsed, flags } = request;
  checkThresholdClasses(parsed.thresholds, target.classes);
  // Every output file is opened before the run: a path that cannot be written fails now, not after it.
  const csv = flags.csv ? openFile(flags.csv, '--csv') : undefined;
  const ndjson = flags.ndjson ? new NdjsonWriter(flags.ndjson) : undefined;
  const raw = flags.raw ? new RawWriter(flags.raw) : undefined;
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
    ndjson?.interval(interval);
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
    result = await runLoad(target, { ...parsed.options, kinds: request.kinds, drainMs: request.drainMs, signal: controller.signal, onInterval, observer: raw }, request.source);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.finish();
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
