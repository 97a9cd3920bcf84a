/**
 * `--threshold 'p99<50ms'`: a condition on the summary that a CI job can gate on. Metrics:
 * p50 p90 p99 p99.9 max (latency: from the intended send time in the open model), the same with
 * `service_` in front, error_rate, dropped, drop_rate, achieved_rate, requests, lateness_p99.
 * Values: a number, a duration (us, ms, s), a percentage, or a multiple of `target`.
 */
import { InputError } from '../shared/errors.js';
import type { LoadSummary } from './summary.js';

export interface Threshold {
  text: string;
  metric: string;
  op: '<' | '<=' | '>' | '>=';
  /** Microseconds for latencies, a fraction for rates given in %, a plain number otherwise. */
  value: number;
  /** `0.98*target`: the value is this factor times the target rate. */
  ofTarget: boolean;
}

export interface ThresholdOutcome {
  threshold: string;
  ok: boolean;
  actual: number;
  limit: number;
}

const LATENCY = new Set(['p50', 'p90', 'p99', 'p99.9', 'p999', 'max']);
const METRICS = [...LATENCY, ...[...LATENCY].map((m) => `service_${m}`), 'error_rate', 'dropped', 'drop_rate', 'achieved_rate', 'requests', 'lateness_p99'];

export function parseThreshold(text: string): Threshold {
  const match = /^\s*(?<metric>[a-z_0-9.]+)\s*(?<op><=|>=|<|>)\s*(?<valueText>.+?)\s*$/.exec(text)?.groups;
  if (!match) throw new InputError(`--threshold "${text}": expected METRIC<VALUE, e.g. p99<50ms, error_rate<0.1%, achieved_rate>0.98*target`);
  const { metric, valueText } = match as { metric: string; valueText: string };
  const op = match.op as Threshold['op'];
  if (!METRICS.includes(metric)) throw new InputError(`--threshold "${text}": unknown metric "${metric}" (known: ${METRICS.join(', ')})`);
  const isLatency = LATENCY.has(metric.replace(/^service_/, '')) || metric === 'lateness_p99';
  const target = /^(\d+(?:\.\d+)?)\s*\*\s*target$/.exec(valueText);
  if (target) {
    if (metric !== 'achieved_rate') throw new InputError(`--threshold "${text}": "*target" applies to achieved_rate only`);
    return { text, metric, op, value: Number(target[1]), ofTarget: true };
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
  return { text, metric, op, value, ofTarget: false };
}

function isLatencyMetric(metric: string): boolean {
  return LATENCY.has(metric.replace(/^service_/, '')) || metric === 'lateness_p99';
}

function metricValue(summary: LoadSummary, metric: string): number {
  const latency = (key: string): number => {
    const percentiles = metric.startsWith('service_') ? summary.serviceUs : summary.latencyUs;
    const name = key === 'p99.9' ? 'p999' : key;
    return percentiles[name as keyof typeof percentiles];
  };
  switch (metric) {
    case 'error_rate':
      return summary.errorRate;
    case 'dropped':
      return summary.dropped;
    case 'drop_rate':
      return summary.requests + summary.dropped > 0 ? summary.dropped / (summary.requests + summary.dropped) : 0;
    case 'achieved_rate':
      return summary.achievedRate;
    case 'requests':
      return summary.requests;
    case 'lateness_p99':
      return summary.schedulerLatenessUs.p99;
    default:
      return latency(metric.replace(/^service_/, ''));
  }
}

export function evaluateThresholds(thresholds: readonly Threshold[], summary: LoadSummary): ThresholdOutcome[] {
  return thresholds.map((threshold) => {
    const actual = metricValue(summary, threshold.metric);
    // No reply, no latency: a latency limit is not met by an empty histogram.
    if (summary.requests === 0 && isLatencyMetric(threshold.metric)) return { threshold: threshold.text, ok: false, actual, limit: threshold.value };
    const limit = threshold.ofTarget ? threshold.value * (summary.targetRate ?? 0) : threshold.value;
    const ok = threshold.op === '<' ? actual < limit : threshold.op === '<=' ? actual <= limit : threshold.op === '>' ? actual > limit : actual >= limit;
    return { threshold: threshold.text, ok, actual, limit };
  });
}
