/**
 * `--threshold 'p99<50ms'`: a condition on the summary that a CI job can gate on. Metrics:
 * p50 p90 p99 p99.9 (or any percentile) min mean max (latency of the answers, from the intended
 * send time in the open model), the same with `service_` in front (every reply, from the send),
 * error_rate, dropped, drop_rate, achieved_rate, requests, lateness_p99. Latencies, error_rate and
 * requests narrow to one outcome class with `{class}` (`{all}`: every reply, errors included).
 * Values: a number, a duration (us, ms, s), a percentage, or a multiple of `target`.
 */
import { InputError } from '../shared/errors.js';
import type { LoadSummary } from './summary.js';
import { percentileKey, type Percentiles } from './histogram.js';

export interface Threshold {
  text: string;
  metric: string;
  op: '<' | '<=' | '>' | '>=';
  /** Microseconds for latencies, a fraction for rates given in %, a plain number otherwise. */
  value: number;
  /** `0.98*target`: the value is this factor times the target rate. */
  ofTarget: boolean;
  /** `p99{allow}`: the metric over one outcome class (`all`: every reply; latencies default to the answers). */
  outcomeClass?: string;
}

export interface ThresholdOutcome {
  threshold: string;
  ok: boolean;
  actual: number;
  limit: number;
}

const LATENCY = new Set(['p50', 'p90', 'p99', 'p99.9', 'p999', 'max', 'min', 'mean']);
const METRICS = [...LATENCY, ...[...LATENCY].map((m) => `service_${m}`), 'error_rate', 'dropped', 'drop_rate', 'achieved_rate', 'requests', 'lateness_p99'];
/** Metrics that can be narrowed to one outcome class with `{class}`. */
const PER_CLASS = new Set([...LATENCY, 'error_rate', 'requests']);
/** Any percentile, e.g. p99.99 (its key is asked of the summary). */
const PERCENTILE = /^p(\d{1,2}(\.\d+)?|100)$/;

/** The percentiles the thresholds look at, so the summary carries them. */
export function thresholdPercentiles(thresholds: readonly Threshold[]): number[] {
  return thresholds.map((t) => t.metric.replace(/^service_/, '')).filter((m) => PERCENTILE.test(m)).map((m) => Number(m.slice(1)));
}

/** A class a threshold names must be one the target can report: a typo would otherwise pass silently. */
export function checkThresholdClasses(thresholds: readonly Threshold[], classes: readonly string[]): void {
  for (const t of thresholds) {
    if (t.outcomeClass !== undefined && t.outcomeClass !== 'all' && !classes.includes(t.outcomeClass)) {
      throw new InputError(`--threshold "${t.text}": unknown outcome class "${t.outcomeClass}" (this target's: ${[...classes, 'all'].join(', ')})`);
    }
  }
}

export function parseThreshold(text: string): Threshold {
  const match = /^\s*(?<metric>[a-z_0-9.]+)(?:\{(?<outcomeClass>[^{}]*)\})?\s*(?<op><=|>=|<|>)\s*(?<valueText>.+?)\s*$/.exec(text)?.groups;
  if (!match) throw new InputError(`--threshold "${text}": expected METRIC<VALUE, e.g. p99<50ms, p99{allow}<20ms, error_rate<0.1%, error_rate{timeout}<0.01%, achieved_rate>0.98*target`);
  const { metric, valueText } = match as { metric: string; valueText: string };
  const op = match.op as Threshold['op'];
  const outcomeClass = match.outcomeClass?.trim();
  const bare = metric.replace(/^service_/, '');
  if (!METRICS.includes(metric) && !PERCENTILE.test(bare)) throw new InputError(`--threshold "${text}": unknown metric "${metric}" (known: ${METRICS.join(', ')}, or any percentile such as p99.99)`);
  if (outcomeClass !== undefined && (metric.startsWith('service_') || !(PER_CLASS.has(metric) || PERCENTILE.test(metric)))) {
    throw new InputError(`--threshold "${text}": ${metric} takes no {class} (those that do: latencies from the intended send, error_rate, requests)`);
  }
  if (outcomeClass === '') throw new InputError(`--threshold "${text}": an empty {class}`);
  const isLatency = isLatencyMetric(metric);
  const target = /^(\d+(?:\.\d+)?)\s*\*\s*target$/.exec(valueText);
  if (target) {
    if (metric !== 'achieved_rate') throw new InputError(`--threshold "${text}": "*target" applies to achieved_rate only`);
    return { text, metric, op, value: Number(target[1]), ofTarget: true, outcomeClass };
  }
  const number = /^(\d+(?:\.\d+)?)\s*(us|µs|ms|s|%)?$/.exec(valueText);
  if (!number) throw new InputError(`--threshold "${text}": "${valueText}" is not a number, a duration (50ms) or a percentage (0.1%)`);
  const unit = number[2];
  let value = Number(number[1]);
  if (isLatency) {
    if (unit === '%' ) throw new InputError(`--threshold "${text}": ${metric} is a latency: give us, ms or s`);
    value *= unit === 's' ? 1e6 : unit === 'ms' ? 1e3 : 1;
  } else if (unit === '%') {
    if (metric !== 'error_rate' && metric !== 'drop_rate') throw new InputError(`--threshold "${text}": only error_rate and drop_rate take a percentage`);
    value /= 100;
  } else if (unit !== undefined) {
    throw new InputError(`--threshold "${text}": ${metric} is not a latency: no ${unit}`);
  }
  return { text, metric, op, value, ofTarget: false, outcomeClass };
}

function isLatencyMetric(metric: string): boolean {
  const bare = metric.replace(/^service_/, '');
  return LATENCY.has(bare) || PERCENTILE.test(bare) || metric === 'lateness_p99';
}

/** The latency figures a threshold reads: service, one class, every reply, or (by default) the answers. */
function latencyOf(summary: LoadSummary, threshold: Threshold): Percentiles | undefined {
  if (threshold.metric.startsWith('service_')) return summary.serviceUs;
  if (threshold.outcomeClass === 'all') return summary.latencyUsAll;
  if (threshold.outcomeClass !== undefined) return summary.latencyUsByClass[threshold.outcomeClass];
  return summary.latencyUs;
}

/** Replies of one named class; undefined for no class (the answers) or `all`. */
function classCount(summary: LoadSummary, outcomeClass: string | undefined): number | undefined {
  return outcomeClass === undefined || outcomeClass === 'all' ? undefined : summary.outcomes[outcomeClass] ?? 0;
}

function metricValue(summary: LoadSummary, threshold: Threshold): number {
  const { metric, outcomeClass } = threshold;
  const replies = summary.requests + summary.unfinished;
  const ofClass = classCount(summary, outcomeClass);
  const latency = (key: string): number => {
    const name = PERCENTILE.test(key) ? percentileKey(Number(key.slice(1))) : key;
    return latencyOf(summary, threshold)?.[name] ?? 0;
  };
  switch (metric) {
    case 'error_rate':
      return ofClass === undefined ? summary.errorRate : replies > 0 ? ofClass / replies : 0;
    case 'dropped':
      return summary.dropped;
    case 'drop_rate':
      return summary.requests + summary.dropped > 0 ? summary.dropped / (summary.requests + summary.dropped) : 0;
    case 'achieved_rate':
      return summary.achievedRate;
    case 'requests':
      return ofClass ?? summary.requests;
    case 'lateness_p99':
      return summary.schedulerLatenessUs.p99;
    default:
      return latency(metric.replace(/^service_/, ''));
  }
}

export function evaluateThresholds(thresholds: readonly Threshold[], summary: LoadSummary): ThresholdOutcome[] {
  return thresholds.map((threshold) => {
    const actual = metricValue(summary, threshold);
    // No reply, no latency: a latency limit is not met by an empty histogram (of the run, or of the class).
    const replies = threshold.metric.startsWith('service_') ? summary.requests
      : classCount(summary, threshold.outcomeClass) ?? (threshold.outcomeClass === 'all' ? summary.requests : summary.requests - summary.errors);
    if (replies === 0 && isLatencyMetric(threshold.metric)) return { threshold: threshold.text, ok: false, actual, limit: threshold.value };
    const limit = threshold.ofTarget ? threshold.value * (summary.targetRate ?? 0) : threshold.value;
    const ok = threshold.op === '<' ? actual < limit : threshold.op === '<=' ? actual <= limit : threshold.op === '>' ? actual > limit : actual >= limit;
    return { threshold: threshold.text, ok, actual, limit };
  });
}
