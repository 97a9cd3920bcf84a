/**
 * The load-mode flags every "plays the proxy" command shares, and what they parse to
 * (load-run.ts runs a target with them and gives the exit code: 0 ok, 1 the run failed,
 * 3 a threshold breached, 130 interrupted).
 */
import { Command, Option } from 'commander';
import { InputError } from '../shared/errors.js';
import { type LoadOptions } from '../load/run-types.js';
import { DEFAULT_PERCENTILES } from '../load/histogram.js';
import { LONG_RUN_MS, parseDuration, parseStages, runProfile, type ArrivalProcess, type Stage } from '../load/schedule.js';
import { parseThreshold, type Threshold } from '../load/thresholds.js';
import { parseTags, type Label } from '../load/metrics.js';
import { parseHostPort } from '../shared/listen.js';

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
  metricsListen?: string;
  metricsLinger?: string;
  tag: string[];
}

/** Adds the load flags; `--duration` and `--json` may already belong to the command. */
/** The flags addLoadOptions declares: they belong to load mode only. */
export const LOAD_FLAGS = [
  '--load', '--rate', '--max-inflight', '--concurrency', '--pipelining', '--stages', '--warmup', '--requests', '--precise',
  '--threshold', '--csv', '--hdr-log', '--html', '--yes', '--duration', '--percentiles', '--arrivals', '--ndjson', '--raw',
  '--metrics-listen', '--metrics-linger', '--tag',
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
  /** The percentiles to report (--percentiles). */
  percentiles: number[];
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
      maxInflight, pipelining, precise: flags.precise ?? false, arrivals: parseArrivals(flags.arrivals, model),
    },
    totalMs,
    thresholds,
    percentiles: parsePercentiles(flags.percentiles),
    metrics,
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
