/**
 * A tap's totals, printed when it stops: exchanges by event, verdict and class, latency
 * percentiles (one histogram: memory does not grow with the run), contract violations by check.
 */
import { newHistogram, percentilesOf, recordUs, type Histogram } from '../load/histogram.js';

export interface TallyJson {
  exchanges: number;
  byEvent: Record<string, number>;
  byVerdict: Record<string, number>;
  byClass: Record<string, number>;
  latencyMs: Record<string, number>;
  violations: Record<string, number>;
  connections: number;
  upstreamDown: number;
}

export class TapTally {
  private readonly histogram: Histogram = newHistogram();
  private readonly counts = { byEvent: new Map<string, number>(), byVerdict: new Map<string, number>(), byClass: new Map<string, number>(), violations: new Map<string, number>() };
  exchanges = 0;
  connections = 0;
  upstreamDown = 0;

  add(event: string, verdict: string, cls: string, latencyMs: number, violations: readonly string[]): void {
    this.exchanges++;
    bump(this.counts.byEvent, event);
    bump(this.counts.byVerdict, verdict);
    bump(this.counts.byClass, cls);
    for (const id of new Set(violations)) bump(this.counts.violations, id);
    recordUs(this.histogram, latencyMs * 1000);
  }

  json(): TallyJson {
    const latency = this.exchanges === 0 ? {} : percentilesOf(this.histogram);
    return {
      exchanges: this.exchanges,
      byEvent: Object.fromEntries(this.counts.byEvent),
      byVerdict: Object.fromEntries(this.counts.byVerdict),
      byClass: Object.fromEntries(this.counts.byClass),
      latencyMs: Object.fromEntries(Object.entries(latency).map(([k, us]) => [k, Math.round(us as number) / 1000])),
      violations: Object.fromEntries(this.counts.violations),
      connections: this.connections,
      upstreamDown: this.upstreamDown,
    };
  }

  /** A few lines for stderr. */
  text(): string {
    const j = this.json();
    const list = (m: Record<string, number>): string => Object.entries(m).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
    const lines = [`${j.exchanges} exchanges on ${j.connections} connections${j.upstreamDown > 0 ? ` (${j.upstreamDown} could not reach the upstream)` : ''}`];
    if (j.exchanges > 0) {
      lines.push(`  by event: ${list(j.byEvent)}`, `  by verdict: ${list(j.byVerdict)}`, `  by class: ${list(j.byClass)}`);
      lines.push(`  latency ms: ${['p50', 'p90', 'p99', 'max'].map((k) => `${k} ${j.latencyMs[k] ?? '-'}`).join(', ')}`);
    }
    lines.push(`  contract violations: ${list(j.violations)}`);
    return lines.join('\n');
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
