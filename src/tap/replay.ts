/**
 * Replaying a recording against a backend, whatever the protocol: each recorded exchange is sent
 * again at its recorded time (scaled by --speed) and its new verdict set beside the recorded one.
 * What a protocol supplies is how to send one record and what its verdict is called
 * (ReplayTarget); the timing, the comparison and the report are here, once.
 */
import { InputError } from '../shared/errors.js';
import { lineOf, type RecordBase } from './recording.js';
import type { ArrivalSource } from '../load/target.js';

export interface ReplayTarget<R extends RecordBase> {
  /** The recorded verdict, as one comparable word (`allow`, `policy-deny`, `user:alice`...). */
  recorded(record: R): string;
  /** Sends the record again; resolves to the new verdict in the same words, and a detail for a change. */
  send(record: R): Promise<{ verdict: string; detail?: string }>;
  /** What the exchange was, for the report (event, masked credential). */
  describe(record: R): string;
}

export interface ReplayChange {
  line: number;
  what: string;
  from: string;
  to: string;
  detail?: string;
}

export interface ReplayReport {
  exchanges: number;
  same: number;
  changed: number;
  changes: ReplayChange[];
  /** Counts of each "from -> to" transition. */
  transitions: Record<string, number>;
  durationMs: number;
  speed: number;
}

export function parseSpeed(text: string): number {
  const speed = Number(text);
  if (!/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) || !(speed > 0) || speed > 1e6) {
    throw new InputError(`--speed: expected a factor > 0 (1 = the recorded timing, 10 = ten times faster, 0 is not allowed), got "${text}"`);
  }
  return speed;
}

/**
 * Sends every record at its recorded offset divided by `speed`, all in flight as recorded, and
 * compares. Infinity: one after another, in the recorded order, for a question that has no
 * timing (Snell's: which user, through one IP cache). A send that throws is that exchange's
 * verdict (`error: ...`), never an unhandled rejection while the next one waits its turn.
 */
export async function replay<R extends RecordBase>(records: readonly R[], target: ReplayTarget<R>, speed: number, signal?: AbortSignal): Promise<ReplayReport> {
  const started = performance.now();
  const origin = records[0]!.offsetMs;
  const outcomes: Promise<ReplayChange | undefined>[] = [];
  const compare = (record: R): Promise<ReplayChange | undefined> => target.send(record).then(({ verdict, detail }) => {
    const from = target.recorded(record);
    return verdict === from ? undefined : { line: lineOf(record), what: target.describe(record), from, to: verdict, detail };
  }, (error: unknown) => ({ line: lineOf(record), what: target.describe(record), from: target.recorded(record), to: `error: ${(error as Error).message}` }));
  for (const record of records) {
    if (!Number.isFinite(speed)) {
      outcomes.push(Promise.resolve(await compare(record)));
      continue;
    }
    const dueMs = (record.offsetMs - origin) / speed - (performance.now() - started);
    if (dueMs > 1) await sleep(dueMs, signal);
    if (signal?.aborted) break;
    outcomes.push(compare(record));
  }
  const settled = await Promise.all(outcomes);
  const changes = settled.filter((c): c is ReplayChange => c !== undefined);
  return reportOf(settled.length - changes.length, changes, Math.round(performance.now() - started), speed);
}

/** The report from its counts: `changes` in recording order, and how many of each transition. */
function reportOf(same: number, changes: ReplayChange[], durationMs: number, speed: number): ReplayReport {
  const transitions: Record<string, number> = {};
  for (const change of changes) transitions[`${change.from} -> ${change.to}`] = (transitions[`${change.from} -> ${change.to}`] ?? 0) + 1;
  return { exchanges: same + changes.length, same, changed: changes.length, changes, transitions, durationMs, speed };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Changes listed one by one on screen; the totals and --json have all of them. */
const LISTED = 20;

/** The report for a person: the totals, each transition, the first changes with their lines. */
export function replayText(report: ReplayReport, file: string, noun = 'exchanges'): string {
  const pace = Number.isFinite(report.speed) ? ` at ${report.speed}x` : '';
  const lines = [`${report.exchanges} ${noun} replayed from ${file}${pace} in ${(report.durationMs / 1000).toFixed(1)} s: ${report.same} same, ${report.changed} changed`];
  for (const [transition, n] of Object.entries(report.transitions)) lines.push(`  ${transition}: ${n}`);
  for (const change of report.changes.slice(0, LISTED)) lines.push(`  line ${change.line}: ${change.what}: ${change.from} -> ${change.to}${change.detail ? ` (${change.detail})` : ''}`);
  if (report.changes.length > LISTED) lines.push(`  ... and ${report.changes.length - LISTED} more (--json lists every one)`);
  return lines.join('\n');
}

/** JUnit XML: one testcase per changed exchange as a failure, and one for the unchanged rest. */
export function replayJunit(report: ReplayReport, suite: string): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
  const cases = report.changes.map((c) => {
    const message = `${c.from} -> ${c.to}`;
    return `    <testcase classname="${esc(suite)}" name="${esc(`line ${c.line}: ${c.what}`)}">\n      <failure message="${esc(message)}" type="changed">${esc(`${message}${c.detail ? `: ${c.detail}` : ''}`)}</failure>\n    </testcase>`;
  });
  cases.push(`    <testcase classname="${esc(suite)}" name="${report.same} of ${report.exchanges} exchanges reach the recorded verdict"/>`);
  const counts = `tests="${cases.length}" failures="${report.changed}" errors="0" skipped="0" time="${(report.durationMs / 1000).toFixed(3)}"`;
  return ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="${esc(suite)}" ${counts}>`, `  <testsuite name="${esc(suite)}" ${counts}>`, ...cases, '  </testsuite>', '</testsuites>'].join('\n');
}

/**
 * A recording as the load engine's arrivals (--replay FILE --load): each record at its recorded
 * offset divided by `speed`, as the operation `toOp` makes of it; each outcome class compared
 * with the recorded class (a load run reports classes, not users).
 */
export class ReplayArrivals<R extends RecordBase, Op> implements ArrivalSource<Op> {
  private next = 0;
  private readonly origin: number;
  private readonly records = new Map<Op, R>();
  readonly changes: ReplayChange[] = [];
  same = 0;

  constructor(
    private readonly all: readonly R[],
    private readonly speed: number,
    private readonly toOp: (record: R) => Op,
    private readonly target: Pick<ReplayTarget<R>, 'describe'> & { recordedClass(record: R): string },
  ) {
    this.origin = all[0]!.offsetMs;
  }

  /** How long the recording lasts at this speed (its offsets never go back: readRecording). */
  get spanMs(): number {
    return (this.all[this.all.length - 1]!.offsetMs - this.origin) / this.speed;
  }

  peek(): number {
    return this.next < this.all.length ? (this.all[this.next]!.offsetMs - this.origin) / this.speed : Infinity;
  }

  take(): Op {
    const record = this.all[this.next++]!;
    const op = this.toOp(record);
    this.records.set(op, record);
    return op;
  }

  exhausted(): boolean {
    return this.next >= this.all.length;
  }

  completed(op: Op, outcome: string): void {
    const record = this.records.get(op)!;
    this.records.delete(op);
    const from = this.target.recordedClass(record);
    if (outcome === from) this.same++;
    else this.changes.push({ line: lineOf(record), what: this.target.describe(record), from, to: outcome });
  }

  /** An arrival the engine dropped (no slot, or the run ended): not compared (notCompared). */
  dropped(op: Op): void {
    this.records.delete(op);
  }

  /**
   * Records that were never compared: never taken (past --duration), dropped by the engine, or
   * still in flight when the run ended. A replay with any is incomplete.
   */
  get notCompared(): number {
    return this.all.length - this.same - this.changes.length;
  }

  /** The comparison as a replay report (changes in recording order). */
  report(durationMs: number): ReplayReport {
    return reportOf(this.same, [...this.changes].sort((a, b) => a.line - b.line), durationMs, this.speed);
  }
}
