/**
 * Files written while a run goes: `--ndjson` one JSON line per interval (as k6's `--out json`
 * streams its points) and `--raw` one line per request (as vegeta's results), so a long run can
 * be watched with `tail -f` and analysed afterwards with any tool.
 */
import { closeSync, writeSync } from 'node:fs';
import type { LoadObserver, RequestRecord } from '../load/run-types.js';
import type { IntervalRow } from './load-series.js';
import { openForWrite } from '../shared/files.js';

/** `--ndjson FILE`: each interval as it closes, one JSON object a line, written at once. */
export class NdjsonWriter {
  private readonly fd: number;

  constructor(path: string) {
    this.fd = openForWrite(path, '--ndjson');
  }

  /** `row`: the interval as the series has it already (rowOf), written with whether it is partial. */
  interval(row: IntervalRow, partial: boolean): void {
    writeSync(this.fd, `${JSON.stringify({ type: 'interval', ...row, partial })}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

const RAW_HEADER = 'intended_epoch_ms,sent_epoch_ms,latency_us,service_us,outcome,kind';

/**
 * `--raw FILE`: every measured request as CSV: when it was meant to go and went (wall clock, ms),
 * its latency from the intended time and from the send (µs), its outcome class and kind. Lines
 * are gathered and written 64 KiB at a time: one write per request would cost the client more
 * than the request itself.
 */
export class RawWriter implements LoadObserver {
  private readonly fd: number;
  private buffer: string[] = [];
  private bytes = 0;
  private epochAtStartMs = 0;

  constructor(path: string) {
    this.fd = openForWrite(path, '--raw');
    writeSync(this.fd, `${RAW_HEADER}\n`);
  }

  start(epochAtStartMs: number): void {
    this.epochAtStartMs = epochAtStartMs;
  }

  completed(record: RequestRecord): void {
    const line = `${(this.epochAtStartMs + record.intendedMs).toFixed(3)},${(this.epochAtStartMs + record.sentMs).toFixed(3)},` +
      `${Math.round((record.doneMs - record.intendedMs) * 1000)},${Math.round((record.doneMs - record.sentMs) * 1000)},${record.outcome},${record.kind ?? ''}\n`;
    this.buffer.push(line);
    this.bytes += line.length;
    if (this.bytes >= 65_536) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    if (this.buffer.length === 0) return;
    writeSync(this.fd, this.buffer.join(''));
    this.buffer = [];
    this.bytes = 0;
  }
}
