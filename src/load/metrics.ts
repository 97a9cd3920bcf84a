/**
 * Live metrics of a load run in the Prometheus text exposition format (version 0.0.4): requests
 * per outcome class, errors, drops, requests in flight, the target and achieved rates and a
 * latency histogram, every series labelled with the generator and the user's `--tag`s. The
 * registry is the engine's observer: O(1) work and no allocation per request.
 */
import { hostname } from 'node:os';
import { InputError } from '../shared/errors.js';
import type { LoadObserver, RequestRecord } from './run-types.js';
import type { Interval } from './intervals.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds of the latency buckets, seconds: 100 µs to 10 s in 1-2.5-5 steps. */
export const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export type Label = readonly [name: string, value: string];

/** Labels the registry sets itself: a tag may not take them. */
const OWN_LABELS = new Set(['class', 'le']);

/** `key=value` tags, validated; `generator` defaults to `${hostname}-${pid}` unless a tag sets it. */
export function parseTags(texts: readonly string[], generator = `${hostname()}-${process.pid}`): Label[] {
  const labels = new Map<string, string>();
  for (const text of texts) {
    const eq = text.indexOf('=');
    const key = text.slice(0, Math.max(eq, 0));
    const value = text.slice(eq + 1);
    if (eq < 1 || value === '') throw new InputError(`--tag: expected KEY=VALUE with a non-empty value, got "${text}"`);
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(key) || key.startsWith('__')) {
      throw new InputError(`--tag: "${key}" is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)`);
    }
    if (OWN_LABELS.has(key)) throw new InputError(`--tag: "${key}" is a label of the metrics themselves`);
    if (labels.has(key)) throw new InputError(`--tag: ${key} given twice`);
    labels.set(key, value);
  }
  return [['generator', labels.get('generator') ?? generator], ...[...labels].filter(([key]) => key !== 'generator')];
}

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function labelText(labels: readonly Label[]): string {
  return labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',');
}

/** A sample value: Prometheus reads Go's float syntax, which JavaScript's numbers (and NaN, +Inf) satisfy. */
function number(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export class LoadMetrics implements LoadObserver {
  private readonly common: string;
  private readonly classes = new Map<string, number>();
  private errors = 0;
  private droppedCount = 0;
  private inFlight = 0;
  private targetRate: number | undefined;
  private achievedRate = 0;
  private readonly bucketsS: readonly number[];
  private readonly boundsMs: readonly number[];
  /** Per bucket, not cumulative; the last is +Inf. */
  private readonly buckets: Float64Array;
  private latencySumMs = 0;
  private latencyCount = 0;

  /**
   * `targetRate`: the open model's starting rate (updated each interval); none in the closed
   * model, which has no target. `bucketsS`: the latency buckets' upper bounds, ascending.
   */
  constructor(labels: readonly Label[], options: { targetRate?: number; bucketsS?: readonly number[] } = {}) {
    this.common = labelText(labels);
    this.targetRate = options.targetRate;
    this.bucketsS = options.bucketsS ?? LATENCY_BUCKETS_S;
    this.boundsMs = this.bucketsS.map((s) => s * 1000);
    this.buckets = new Float64Array(this.bucketsS.length + 1);
  }

  sent(): void {
    this.inFlight++;
  }

  completed(record: RequestRecord): void {
    this.inFlight--;
    this.classes.set(record.outcome, (this.classes.get(record.outcome) ?? 0) + 1);
    if (record.failed) this.errors++;
    const ms = record.doneMs - record.intendedMs;
    const bounds = this.boundsMs;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]!) i++;
    this.buckets[i]!++;
    this.latencySumMs += ms;
    this.latencyCount++;
  }

  dropped(): void {
    this.droppedCount++;
  }

  /** A finished interval of the run: the achieved rate over it, and the schedule's rate. */
  interval(interval: Interval): void {
    const seconds = (interval.endMs - interval.startMs) / 1000;
    this.achievedRate = seconds > 0 ? interval.requests / seconds : 0;
    if (this.targetRate !== undefined) this.targetRate = interval.targetRate;
  }

  /** The run is over: nothing in flight (the target is closed), nothing asked, nothing achieved. The counters stay. */
  ended(): void {
    this.inFlight = 0;
    this.achievedRate = 0;
    if (this.targetRate !== undefined) this.targetRate = 0;
  }

  render(): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
    };
    const sample = (name: string, value: number, extra?: Label): void => {
      const labels = extra ? (this.common === '' ? labelText([extra]) : `${this.common},${labelText([extra])}`) : this.common;
      lines.push(`${name}${labels === '' ? '' : `{${labels}}`} ${number(value)}`);
    };
    family('authkit_load_requests_total', 'counter', 'Measured requests that ended, by outcome class.');
    for (const [outcome, count] of this.classes) sample('authkit_load_requests_total', count, ['class', outcome]);
    family('authkit_load_errors_total', 'counter', 'Measured requests whose outcome the target counts as an error.');
    sample('authkit_load_errors_total', this.errors);
    family('authkit_load_dropped_total', 'counter', 'Arrivals dropped: max-inflight reached and the queue full.');
    sample('authkit_load_dropped_total', this.droppedCount);
    family('authkit_load_requests_in_flight', 'gauge', 'Measured requests sent and not yet ended.');
    sample('authkit_load_requests_in_flight', this.inFlight);
    if (this.targetRate !== undefined) {
      family('authkit_load_target_rate', 'gauge', 'The schedule\'s arrival rate, requests per second (open model).');
      sample('authkit_load_target_rate', this.targetRate);
    }
    family('authkit_load_achieved_rate', 'gauge', 'Requests ended per second over the last completed interval (about a second).');
    sample('authkit_load_achieved_rate', this.achievedRate);
    family('authkit_load_latency_seconds', 'histogram', 'Response time from the intended send time (open model) or the send (closed model), seconds.');
    let cumulative = 0;
    for (let i = 0; i <= this.bucketsS.length; i++) {
      cumulative += this.buckets[i]!;
      sample('authkit_load_latency_seconds_bucket', cumulative, ['le', number(this.bucketsS[i] ?? Infinity)]);
    }
    sample('authkit_load_latency_seconds_sum', this.latencySumMs / 1000);
    sample('authkit_load_latency_seconds_count', this.latencyCount);
    return `${lines.join('\n')}\n`;
  }
}
