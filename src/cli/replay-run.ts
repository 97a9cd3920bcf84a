/** What the replays (xray-sim --replay, capnp-check --replay) share as commands: timing, report, JUnit and exit code. */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { openForWrite } from '../shared/files.js';
import type { RecordBase } from '../tap/recording.js';
import { parseSpeed, replay, replayJunit, replayText, type ReplayArrivals, type ReplayTarget } from '../tap/replay.js';
import { EXIT_FAILED, EXIT_OK, log, out } from './io.js';
import { parseLoadFlags, type LoadFlags, type ParsedLoad } from './load.js';

export interface ReplayFlags {
  replay?: string;
  speed: string;
  allowChanges?: boolean;
  json?: boolean;
  junit?: string;
}

/** The replay flags, for a command's mode table (--json and --junit are shared with other modes). */
export const REPLAY_FLAGS = ['--replay', '--speed', '--allow-changes'] as const;

/**
 * A load replay runs the recording's span and this much more by default, so that the last
 * record, due at the very end, is taken however late the engine's timer fires.
 */
const REPLAY_TAIL_MS = 100;

/**
 * The load options of a replay through the load engine: the recording's span (plus the tail)
 * unless --duration cuts it, its mean rate as the label of the intervals.
 */
export function replayLoadFlags(flags: LoadFlags, source: Pick<ReplayArrivals<RecordBase, unknown>, 'spanMs'>, records: number): ParsedLoad {
  const spanMs = Math.max(source.spanMs, 1);
  return parseLoadFlags({ ...flags, duration: flags.duration ?? `${Math.ceil(spanMs) + REPLAY_TAIL_MS}ms` }, Math.max(records / (spanMs / 1000), 0.001));
}

/** Load flags a replay through the load engine does not take: the recording sets the arrivals. */
export const REPLAY_SETS: readonly string[] = ['--rate', '--concurrency', '--pipelining', '--stages', '--requests', '--arrivals'];

/** Declares them; `tap` names the command whose recording is replayed, `to` where it is sent. */
export function replayOptions(command: Command, tap: string, to: string): Command {
  return command
    .option('--replay <file>', `send a recording made by ${tap} --record-secrets to ${to} and list every verdict that changed (exit 1 on a change; --json, --junit; --load: as the load engine's arrivals)`)
    .option('--speed <factor>', '--replay: 1 keeps the recorded timing, 10 is ten times faster', '1')
    .option('--allow-changes', '--replay: exit 0 even when verdicts changed (the report still lists them)');
}

/** Checks the flags (before any record is sent), runs the replay, prints; exit 1 on a change unless --allow-changes. */
export async function runReplay<R extends RecordBase>(flags: ReplayFlags, records: readonly R[], target: ReplayTarget<R>, suite: string, noun = 'exchanges'): Promise<number> {
  const speed = parseSpeed(flags.speed);
  // The JUnit file is opened before the run: a path that cannot be written fails now, not after it.
  const junitFd = flags.junit === undefined ? undefined : openForWrite(flags.junit, '--junit');
  const report = await replay(records, target, speed);
  if (junitFd !== undefined) writeFileSync(junitFd, `${replayJunit(report, suite)}\n`);
  if (flags.json) out(JSON.stringify(report));
  else out(replayText(report, flags.replay!, noun));
  if (report.changed > 0 && flags.allowChanges) log(`note: ${report.changed} verdicts changed; --allow-changes: exit 0`);
  return report.changed === 0 || flags.allowChanges ? EXIT_OK : EXIT_FAILED;
}

/**
 * After a replay through the load engine: the comparison after the load report (on stderr under
 * --json, whose stdout is the report's), and the exit code: the load run's if it failed (3 for a
 * breached threshold), else 1 if a record was not compared or (unless --allow-changes) a class
 * changed, else 0.
 */
export function finishReplayLoad(source: Pick<ReplayArrivals<RecordBase, unknown>, 'report' | 'notCompared'>, loadCode: number, flags: ReplayFlags, file: string, noun: string, durationMs: number): number {
  const report = source.report(durationMs);
  const text = replayText(report, file, noun);
  if (flags.json) log(text);
  else out(text);
  if (loadCode !== EXIT_OK) return loadCode;
  // A record that was not compared is not a pass: the replay is incomplete.
  if (source.notCompared > 0) {
    log(`INCOMPLETE: ${source.notCompared} recorded ${noun} were not compared (past --duration, dropped by the engine, or unanswered when the run ended)`);
    return EXIT_FAILED;
  }
  if (report.changed > 0 && flags.allowChanges) log(`note: ${report.changed} classes changed; --allow-changes: exit 0`);
  return report.changed === 0 || flags.allowChanges ? EXIT_OK : EXIT_FAILED;
}
