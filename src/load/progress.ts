/**
 * The live progress line on stderr: on a TTY one line redrawn in place with a bar; otherwise a
 * plain line every few seconds (CI logs stay readable).
 */
import { valueOrZero } from './histogram.js';
import type { Interval } from './intervals.js';
import { groupDigits } from '../shared/text.js';

export interface ProgressOptions {
  totalMs: number;
  tty: boolean;
  write: (text: string) => void;
  /** Non-TTY: seconds between lines. */
  everySeconds?: number;
}

export function formatUs(us: number): string {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (us >= 1000) return `${(us / 1000).toFixed(us >= 100_000 ? 0 : us >= 10_000 ? 1 : 2)} ms`;
  return `${Math.round(us)} µs`;
}

export class ProgressLine {
  private requests = 0;
  private errors = 0;
  private lastPlainS = 0;
  private drawn = false;

  constructor(private readonly options: ProgressOptions) {}

  update(interval: Interval): void {
    this.requests += interval.requests;
    this.errors += interval.errors;
    const seconds = (interval.endMs - interval.startMs) / 1000;
    const rate = seconds > 0 ? interval.requests / seconds : 0;
    const p99 = valueOrZero(interval.response, 99);
    const elapsedS = interval.endMs / 1000;
    const totalS = this.options.totalMs / 1000;
    const stats = `${elapsedS.toFixed(0)}/${totalS.toFixed(0)} s  ${groupDigits(rate)} req/s  p99 ${formatUs(p99)}  errors ${this.errors}${interval.dropped > 0 ? `  dropped ${interval.dropped}` : ''}`;
    if (this.options.tty) {
      const width = 24;
      const filled = Math.max(0, Math.min(width, Math.round((elapsedS / Math.max(totalS, 0.001)) * width)));
      this.options.write(`\r\x1b[K[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${stats}`);
      this.drawn = true;
    } else if (elapsedS - this.lastPlainS >= (this.options.everySeconds ?? 5)) {
      this.lastPlainS = elapsedS;
      this.options.write(`progress: ${stats}\n`);
    }
  }

  /** Clears the in-place line before the report is printed. */
  finish(): void {
    if (this.drawn) this.options.write('\r\x1b[K');
  }
}
