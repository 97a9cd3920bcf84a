/**
 * `--html FILE`: one self-contained page (inline SVG and CSS, no script, no network) that tells
 * the whole story of a run: how it was run (command and settings), whether it ran to its end,
 * what it found (rates, errors, dropped and unfinished requests, thresholds with their actual
 * values, latency by outcome and by kind), throughput and latency over time, the percentile curve.
 */
import type { LoadSummary } from '../load/summary.js';
import type { ThresholdOutcome } from '../load/thresholds.js';
import { formatUs } from '../load/progress.js';
import type { IntervalRow } from './load-series.js';
import { columns, formatThresholdValue } from './load-text.js';
import { type Percentiles } from '../load/histogram.js';
import { groupDigits } from '../shared/text.js';

const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const W = 720;
const H = 220;
const PAD = { left: 64, right: 16, top: 16, bottom: 32 };

interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
}

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function lineChart(title: string, series: Series[], xLabel: (x: number) => string, yLabel: (y: number) => string, xTicks?: number[]): string {
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs, xMin + 1e-9) : 1;
  const yMax = niceMax(ys.length ? Math.max(...ys) : 1);
  const px = (x: number): number => PAD.left + ((x - xMin) / (xMax - xMin || 1)) * (W - PAD.left - PAD.right);
  const py = (y: number): number => H - PAD.bottom - (y / yMax) * (H - PAD.top - PAD.bottom);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${escape(yLabel(y))}</text>`);
  }
  const ticks = xTicks ?? Array.from({ length: 6 }, (_, i) => xMin + ((xMax - xMin) * i) / 5);
  for (const x of ticks) {
    parts.push(`<text x="${px(x).toFixed(1)}" y="${H - PAD.bottom + 18}" text-anchor="middle">${escape(xLabel(x))}</text>`);
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" stroke="${s.color}" fill="none" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
  }
  const legend = series.map((s) => `<span class="key"><svg width="18" height="8"><line x1="0" x2="18" y1="4" y2="4" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/></svg>${escape(s.name)}</span>`).join(' ');
  return `<figure><figcaption>${escape(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escape(title)}">${parts.join('')}</svg><div class="legend">${legend}</div></figure>`;
}

export interface HtmlReportInput {
  title: string;
  summary: LoadSummary;
  rows: readonly IntervalRow[];
  /** The percentile curve of the from-intended (open) or service (closed) histogram. */
  curve: readonly { percentile: number; us: number }[];
  thresholds: readonly ThresholdOutcome[];
  generatedAt: Date;
  /** How the run was made, in order: command, target, model, rates, durations, limits, version. */
  settings?: readonly [string, string][];
}

export function renderLoadHtml(input: HtmlReportInput): string {
  const { summary, rows, curve } = input;
  const span = rows.length > 1 ? rows[rows.length - 1]!.t - rows[0]!.t : 0;
  const seconds = (x: number): string => `${span < 10 ? x.toFixed(1) : Math.round(x)} s`;
  const throughput = lineChart(
    'Throughput over time (requests per second)',
    [
      { name: 'achieved', color: '#1f77b4', points: rows.map((r) => [r.t, r.achievedRate]) },
      ...(summary.model === 'open' ? [{ name: 'target', color: '#7f7f7f', dashed: true, points: rows.map((r): [number, number] => [r.t, r.targetRate]) }] : []),
      { name: 'errors', color: '#d62728', points: rows.map((r) => [r.t, r.requests > 0 ? (r.achievedRate * r.errors) / r.requests : 0]) },
      ...(summary.dropped > 0 ? [{ name: 'dropped', color: '#8c564b', dashed: true, points: rows.map((r): [number, number] => [r.t, r.dropped / Math.max(0.001, r.seconds)]) }] : []),
    ],
    seconds, groupDigits,
  );
  const latency = lineChart(
    `Latency over time${summary.model === 'open' ? ' (from the intended send time)' : ' (service time)'}`,
    [
      { name: 'p50', color: '#2ca02c', points: rows.map((r) => [r.t, r.p50Us]) },
      { name: 'p99', color: '#ff7f0e', points: rows.map((r) => [r.t, r.p99Us]) },
      ...(summary.model === 'open' ? [{ name: 'service p99', color: '#9467bd', dashed: true, points: rows.map((r): [number, number] => [r.t, r.serviceP99Us]) }] : []),
    ],
    seconds, (y) => formatUs(y),
  );
  // x = number of nines: 0 at p0, 1 at p90, 2 at p99, 3 at p99.9 ...
  const nines = (p: number): number => (p >= 100 ? 5 : -Math.log10(1 - p / 100));
  const curvePoints = curve.map((c): [number, number] => [Math.min(5, nines(c.percentile)), c.us]);
  const percentileChart = lineChart(
    'Latency by percentile',
    [{ name: summary.model === 'open' ? 'from intended send' : 'service time', color: '#1f77b4', points: curvePoints }],
    (x) => (x >= 5 ? 'max' : x === 0 ? 'p0' : `p${(100 - 100 / 10 ** x).toFixed(Math.max(0, Math.round(x) - 2))}`), (y) => formatUs(y),
    [0, 1, 2, 3, 4, 5],
  );
  const spectrum = summary.percentiles;
  const heads = columns(spectrum).map((c) => c.head);
  const keys = columns(spectrum).map((c) => c.key);
  const latencyRow = (label: string, p: Percentiles, extra = ''): string =>
    `<tr><th>${escape(label)}</th>${keys.map((k) => `<td>${escape(formatUs(p[k] ?? 0))}</td>`).join('')}${extra}</tr>`;
  const latencyHead = (label: string, extra = ''): string => `<tr><th>${escape(label)}</th>${heads.map((h) => `<th>${escape(h)}</th>`).join('')}${extra}</tr>`;
  const share = (n: number): string => `${((n / Math.max(1, summary.requests)) * 100).toFixed(1)} %`;
  const outcomes = Object.entries(summary.outcomes).map(([o, n]) => `<tr><th>${escape(o)}</th><td>${groupDigits(n)}</td><td>${share(n)}</td></tr>`).join('');
  // One class is the answers row again: the table is for telling classes apart.
  const classes = Object.entries(summary.latencyUsByClass);
  const byClass = classes.length > 1 ? classes.map(([o, p]) => latencyRow(o, p)).join('') : '';
  const kinds = Object.entries(summary.kinds ?? {}).map(([kind, k]) =>
    latencyRow(kind, k.latencyUs, `<td>${groupDigits(k.requests)}</td><td>${escape(Object.entries(k.outcomes).map(([o, n]) => `${o} ${n}`).join(', '))}</td>`)).join('');
  const thresholds = input.thresholds.map((t) =>
    `<tr class="${t.ok ? 'ok' : 'fail'}"><th>${escape(t.threshold)}</th><td>${t.ok ? 'pass' : 'FAIL'}</td><td>${escape(formatThresholdValue(t, t.actual))}</td><td>${escape(formatThresholdValue(t, t.limit))}</td></tr>`).join('');
  const settings = (input.settings ?? []).map(([k, v]) => `<tr><th>${escape(k)}</th><td class="left">${escape(v)}</td></tr>`).join('');
  const short = summary.model === 'open' && summary.targetRate ? summary.achievedRate < summary.targetRate * 0.98 : false;
  const banners = [
    summary.interrupted ? '<p class="banner fail">Interrupted (Ctrl-C): this run stopped early and the figures cover only the part that ran.</p>' : '',
    short ? `<p class="banner warn">Achieved ${((summary.achievedRate / summary.targetRate!) * 100).toFixed(1)} % of the target rate: the backend or the generator could not keep up.</p>` : '',
    summary.generatorBound ? '<p class="banner warn">The generator used over 90 % of a core: the figures may be its limit, not the backend\'s.</p>' : '',
  ].join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(input.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 900px; }
h1 { font-size: 20px; } table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #ddd; } th { text-align: left; }
figure { margin: 16px 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font-size: 11px; fill: #555; } .grid { stroke: #e5e5e5; }
.legend { font-size: 12px; color: #555; } .key { margin-right: 14px; } .key svg { margin-right: 4px; }
.ok { color: #2a7d2a; } .fail { color: #c62828; font-weight: 600; } .warn { color: #b26a00; }
.banner { padding: 8px 12px; border: 2px solid currentColor; border-radius: 4px; } .note { color: #555; font-size: 12px; }
h2 { font-size: 16px; } td.left { text-align: left; }
</style>
</head>
<body>
<h1>${escape(input.title)}</h1>
${banners}
<p>${summary.model} model, ${summary.durationS.toFixed(1)} s measured, generated ${escape(input.generatedAt.toISOString())}.
${summary.model === 'open' ? `Target ${groupDigits(summary.targetRate ?? 0)} req/s, achieved ${groupDigits(summary.achievedRate)} req/s.` : `Achieved ${groupDigits(summary.achievedRate)} req/s.`}</p>
<table><tr><th>requests (replies)</th><td>${groupDigits(summary.requests)}</td></tr>
<tr><th>errors</th><td>${groupDigits(summary.errors)} (${(summary.errorRate * 100).toFixed(2)} %)</td></tr>
<tr><th>dropped (never sent)</th><td>${groupDigits(summary.dropped)}</td></tr>
<tr><th>unfinished (no reply by the end)</th><td>${groupDigits(summary.unfinished)}</td></tr></table>
${thresholds ? `<table><tr><th>threshold</th><th>result</th><th>actual</th><th>limit</th></tr>${thresholds}</table>` : ''}
<table>${latencyHead(summary.model === 'open' ? 'latency (from intended)' : 'latency (from send)')}
${latencyRow('answers', summary.latencyUs)}${summary.errors > 0 ? latencyRow('all replies', summary.latencyUsAll) : ''}${summary.model === 'open' ? latencyRow('service (from send)', summary.serviceUs) : ''}</table>
<p class="note">Percentiles count the replies only: dropped and unfinished requests are counted above, not in them.</p>
<table><tr><th>outcome</th><th>count</th><th>share</th></tr>${outcomes}</table>
${byClass ? `<table>${latencyHead('latency by outcome')}${byClass}</table>` : ''}
${kinds ? `<table>${latencyHead('per kind', '<th>requests</th><th>outcomes</th>')}${kinds}</table>` : ''}
${throughput}
${latency}
${percentileChart}
${settings ? `<h2>How it was run</h2><table>${settings}</table>` : ''}
<p>Scheduler lateness p50 ${escape(formatUs(summary.schedulerLatenessUs.p50))}, p99 ${escape(formatUs(summary.schedulerLatenessUs.p99))}; client CPU ${summary.clientCpuUsPerRequest} µs per request (${summary.clientCpuPercent} % of one core).</p>
</body>
</html>
`;
}
