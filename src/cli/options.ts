/**
 * Option declarations that several commands share, written once so the same flag has the same
 * help everywhere: where a secret comes from, the conformance flags.
 */
import type { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { byteSizeText, parseByteSize } from '../shared/files.js';
import { groupDigits } from '../shared/text.js';
import { DEFAULT_RECORD_BACKLOG_BYTES, DEFAULT_RECORD_BATCH_BYTES, type RecordingBounds, type RecordingWriter } from '../tap/recording.js';

/**
 * `--NAME-env`, `--NAME-file` and `--NAME` for one secret (read by io.ts `readSecret`). The flag
 * itself is visible in `ps` and in shell history, so the help points to the other two.
 */
export function secretOptions(command: Command, name: 'psk' | 'secret', what: string): Command {
  return command
    .option(`--${name}-env <var>`, `${what} from an environment variable`)
    .option(`--${name}-file <file>`, `${what} from a file (one trailing newline dropped)`)
    .option(`--${name} <${name}>`, `${what} (visible in ps: prefer --${name}-env or --${name}-file)`);
}

export interface ConformanceHelp {
  /** What --conformance runs, e.g. "the conformance suite (C01-C15) against the service". */
  suite: string;
  /** What the fixture file holds. */
  fixture: string;
  /** Two check IDs for the --only example. */
  example: string;
}

/** The flags of conformance mode (the names in conformance.ts CONFORMANCE_FLAGS). */
export function conformanceOptions(command: Command, help: ConformanceHelp): Command {
  return command
    .option('--conformance', `run ${help.suite}`)
    .option('--fixture <file>', `--conformance: ${help.fixture}`)
    .option('--list', '--conformance: list the checks without running them')
    .option('--only <ids>', `--conformance: run only these checks, e.g. ${help.example}`)
    .option('--junit <file>', '--conformance or --replay: also write a JUnit XML report')
    .option('--allow-skips', '--conformance: pass although MUST checks did not run (by default such a run is INCOMPLETE, exit 1)');
}

export interface RecordingFlags {
  record?: string;
  recordBatch?: string;
  recordBacklog?: string;
}

/** The bounds of a `--record` file (tap/recording.ts), for the taps and snell-serve. */
export function recordingBoundOptions(command: Command): Command {
  return command
    .option('--record-batch <size>', `--record: lines are written once this many bytes are waiting, or every 10 ms (default ${byteSizeText(DEFAULT_RECORD_BATCH_BYTES)})`)
    .option('--record-backlog <size>', `--record: bytes waiting for the disk past which records are dropped, and counted at exit, so that the command never waits for the disk (default ${byteSizeText(DEFAULT_RECORD_BACKLOG_BYTES)})`);
}

/** `--record-batch` and `--record-backlog`, each of which needs `--record`. */
export function recordingBounds(flags: RecordingFlags): RecordingBounds {
  for (const [given, flag] of [[flags.recordBatch, '--record-batch'], [flags.recordBacklog, '--record-backlog']] as const) {
    if (given !== undefined && flags.record === undefined) throw new InputError(`${flag} needs --record FILE`);
  }
  return {
    batchBytes: flags.recordBatch === undefined ? undefined : parseByteSize(flags.recordBatch, '--record-batch'),
    backlogBytes: flags.recordBacklog === undefined ? undefined : parseByteSize(flags.recordBacklog, '--record-backlog'),
  };
}

/** The line a command prints at exit when its recording dropped records. */
export function droppedRecordsLine(name: string, writer: RecordingWriter): string {
  return `${name}: ${groupDigits(writer.dropped)} records dropped: the disk fell ${byteSizeText(writer.backlogBytes)} behind (--record-backlog)`;
}
