/** The human report of a load run: rates, outcomes, percentiles of both histograms, honesty lines. */
import type { ChalkInstance } from 'chalk';
import type { LoadSummary } from '../load/summary.js';
import type { ThresholdOutcome } from '../load/thresholds.js';
import { formatUs } from '../load/progress.js';
import { percentileKey, type Percentiles } from '../load/histogram.js';
import { groupDigits } from '../shared/text.js';

/** The latency table's columns: min, the percentiles asked (--percentiles), max, mean, stddev. */
export function columns(percentiles: readonly number[]): { head: string; key: string }[] {
  return [
    { head: 'min', key: 'min' },
    ...percentiles.map((p) => ({ head: `p${p}`, key: percentileKey(p) })),
    { head: 'max', key: 'max' }, { head: 'mean', key: 'mean' }, { head: 'stddev', key: 'stddev' },
  ];
}

function headerRow(label: string, percentiles: readonly number[]): string {
  return [label.padEnd(24), ...columns(percentiles).map((c) => c.head.padStart(9))].join('');
}

function percentileRow(label: string, p: Percentiles, percentiles: readonly number[]): string {
  return [label.padEnd(24), ...columns(percentiles).map((c) => formatUs(p[c.key] ?? 0).padStart(9))].join('');
}

export function renderLoadText(summary: LoadSummary, thresholds: readonly ThresholdOutcome[], colors: ChalkInstance, title: string): string {
  const lines: string[] = [];
  lines.push(colors.bold(title));
  const rate = summary.model === 'open'
    ? `target ${groupDigits(summary.targetRate ?? 0)} req/s, achieved ${groupDigits(summary.achievedRate)} req/s`
    : `achieved ${groupDigits(summary.achievedRate)} req/s (closed model)`;
  lines.push(`${summary.model} model, ${summary.durationS.toFixed(1)} s measured: ${rate}`);
  lines.push(`requests ${groupDigits(summary.requests)}, errors ${groupDigits(summary.errors)} (${(summary.errorRate * 100).toFixed(2)} %), dropped ${groupDigits(summary.dropped)}${summary.unfinished > 0 ? `, unfinished ${summary.unfinished}` : ''}`);
  lines.push('');
  lines.push('outcome'.padEnd(22) + 'count'.padStart(10) + 'share'.padStart(10));
  for (const [outcome, n] of Object.entries(summary.outcomes)) {
    lines.push(outcome.padEnd(22) + groupDigits(n).padStart(10) + `${((n / Math.max(1, summary.requests)) * 100).toFixed(1)} %`.padStart(10));
  }
  lines.push('');
  const spectrum = summary.percentiles;
  lines.push(headerRow(summary.model === 'open' ? 'latency (from intended)' : 'latency (from send)', spectrum));
  lines.push(percentileRow('answers', summary.latencyUs, spectrum));
  if (summary.errors > 0) lines.push(percentileRow('all replies', summary.latencyUsAll, spectrum));
  if (summary.model === 'open') lines.push(percentileRow('service (from send)', summary.serviceUs, spectrum));
  const classes = Object.entries(summary.latencyUsByClass);
  if (classes.length > 1) {
    lines.push('');
    lines.push(headerRow('by outcome', spectrum));
    for (const [outcome, stats] of classes) lines.push(percentileRow(outcome, stats, spectrum));
  }
  if (summary.kinds) {
    lines.push('');
    lines.push(`${headerRow('per kind', spectrum)}  requests  outcomes`);
    for (const [kind, stats] of Object.entries(summary.kinds)) {
      const outcomes = Object.entries(stats.outcomes).map(([o, n]) => `${o} ${n}`).join(', ');
      lines.push(`${percentileRow(kind, stats.latencyUs, spectrum)}  ${groupDigits(stats.requests).padStart(8)}  ${outcomes}`);
    }
  }
  lines.push('percentiles count the replies only: dropped and unfinished requests are counted above, not in them');
  lines.push('');
  if (summary.model === 'open') {
    lines.push(`scheduler lateness p50 ${formatUs(summary.schedulerLatenessUs.p50)}, p99 ${formatUs(summary.schedulerLatenessUs.p99)} (the resolution of the from-intended figures)`);
  } else {
    lines.push('closed model: latencies are service times, not comparable with an open-model run (they hide queueing)');
  }
  lines.push(`client CPU ${summary.clientCpuUsPerRequest} µs per request, ${summary.clientCpuPercent} % of one core`);
  if (summary.generatorBound) lines.push(colors.yellow('warning: the generator used over 90 % of a core: the figures may be its limit, not the backend\'s'));
  if (summary.model === 'open' && summary.targetRate && summary.achievedRate < summary.targetRate * 0.98) {
    lines.push(colors.yellow(`warning: achieved ${((summary.achievedRate / summary.targetRate) * 100).toFixed(1)} % of the target rate`));
  }
  if (summary.interrupted) lines.push(colors.yellow('interrupted: a partial report'));
  for (const t of thresholds) {
    lines.push(`${t.ok ? colors.green('pass') : colors.red('FAIL')} threshold ${t.threshold} (actual ${formatActual(t)})`);
  }
  return lines.join('\n');
}

/** A threshold's actual value (or its limit) in the metric's unit. */
export function formatThresholdValue(t: ThresholdOutcome, value: number): string {
  const metric = t.threshold.trim().split(/[<>{]/)[0]!.trim();
  if (/^(service_)?(p\d|max|min|mean|lateness)/.test(metric)) return formatUs(value);
  if (metric === 'error_rate' || metric === 'drop_rate') return `${(value * 100).toFixed(3)} %`;
  return `${Math.round(value * 10) / 10}${metric === 'achieved_rate' ? ' req/s' : ''}`;
}

function formatActual(t: ThresholdOutcome): string {
  const actual = formatThresholdValue(t, t.actual);
  return t.threshold.includes('*target') ? `${actual}, limit ${formatThresholdValue(t, t.limit)}` : actual;
}
