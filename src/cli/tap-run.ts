/**
 * What xray-tap and capnp-tap share as commands: the recording, the screen (a line, a JSON line
 * or nothing per exchange), the totals, and running until SIGINT/SIGTERM. A tap keeps two views
 * of an exchange: masked for the screen unless --show-secrets, and as the recording asks.
 */
import type { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { RecordingWriter, type RecordBase } from '../tap/recording.js';
import { TapTally } from '../tap/tally.js';
import type { Relay } from '../tap/relay.js';
import { droppedRecordsLine, recordingBoundOptions, recordingBounds, type RecordingFlags } from './options.js';
import { EXIT_OK, log, out, stdoutColors, stopRequested, type ServerHooks } from './io.js';

export interface TapFlags extends RecordingFlags {
  /** Header names whose values are credentials too (besides Authorization, Cookie, X-Api-Key). */
  secretHeader: string[];
  recordSecrets?: boolean;
  showSecrets?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export type TapHooks = ServerHooks<Relay>;

export type Colors = ReturnType<typeof stdoutColors>;

/** The flags every tap has. */
export function tapOptions(command: Command): Command {
  return recordingBoundOptions(command
    .option('--record <file>', 'write one JSON line per exchange (credentials masked unless --record-secrets)')
    .option('--record-secrets', 'keep credentials in the recording, so that it can be replayed (keep the file private)'))
    .option('--show-secrets', 'print credentials in clear (masked by default)')
    .option('--secret-header <name>', 'a header whose value is a credential too, masked like Authorization (repeatable; e.g. a token header the proxy config adds)', (value: string, all: string[]) => [...all, value], [] as string[])
    .option('--json', 'print each exchange as a JSON line on stdout (the recording\'s format), and the totals as JSON at the end')
    .option('--quiet', 'print nothing per exchange, only the totals');
}

export interface TapRun<E, R extends RecordBase> {
  name: string;
  flags: TapFlags;
  hooks: TapHooks;
  /** The exchange as a record, with or without its secrets. */
  record: (exchange: E, keepSecrets: boolean) => R;
  /** Its line on screen. */
  line: (record: R, colors: Colors) => string;
  /** The words the totals count it under. */
  tally: (record: R) => { event: string; verdict: string; cls: string; latencyMs: number; violations: string[] };
  /** Starts the tap with these callbacks; `describe` says where it listens and relays, for the start line ("listening on", as every server of authkit says it). */
  start: (callbacks: TapCallbacks<E>) => Promise<Relay>;
  describe: (relay: Relay) => string;
}

export interface TapCallbacks<E> {
  onExchange: (exchange: E) => void;
  log: (line: string) => void;
  onConnection: () => void;
  onUpstreamDown: (id: number, reason: string) => void;
}

export async function runTap<E, R extends RecordBase>(run: TapRun<E, R>): Promise<number> {
  const { flags, hooks, name } = run;
  const say = hooks.log ?? log;
  if (flags.json && flags.quiet) throw new InputError('--json and --quiet exclude each other');
  if (flags.recordSecrets && flags.record === undefined) throw new InputError('--record-secrets needs --record FILE');
  const bounds = recordingBounds(flags);
  const writer = flags.record === undefined ? undefined : new RecordingWriter(flags.record, '--record', (error) => say(`${name}: cannot write ${flags.record} (${error.message}): recording stopped, relaying goes on`), bounds);
  const tally = new TapTally();
  const colors = stdoutColors();
  let relay: Relay;
  try {
    relay = await run.start({
      onExchange: (exchange) => {
        // Each view is built only when something uses it: a quiet tap that records builds one.
        const printing = flags.json || !flags.quiet;
        const kept = writer ? run.record(exchange, flags.recordSecrets === true) : undefined;
        const shown = printing ? (kept && flags.recordSecrets === flags.showSecrets ? kept : run.record(exchange, flags.showSecrets === true)) : undefined;
        // The totals hold counts only: any view will do (unmasked is the cheaper one).
        const counted = run.tally((kept ?? shown ?? run.record(exchange, true))!);
        tally.add(counted.event, counted.verdict, counted.cls, counted.latencyMs, counted.violations);
        if (kept) writer!.write(kept);
        if (flags.json) out(JSON.stringify(shown));
        else if (shown) out(run.line(shown, colors));
      },
      log: (line) => say(`${name}: ${line}`),
      onConnection: () => tally.connections++,
      onUpstreamDown: (id, reason) => {
        tally.upstreamDown++;
        say(`${name}: connection ${id}: the upstream cannot be reached (${reason}): the client's connection was closed, as it would be without the tap`);
      },
    });
  } catch (error) {
    await writer?.close();
    throw error;
  }
  const recording = flags.record === undefined ? '' : `, recording to ${flags.record}${flags.recordSecrets ? ' with secrets' : ' (masked: not replayable)'}`;
  say(`${name}: ${run.describe(relay)}${recording}`);
  hooks.onListening?.(relay);
  await stopRequested(hooks.signal);
  await relay.close();
  await writer?.close();
  if (writer && writer.dropped > 0) say(droppedRecordsLine(name, writer));
  if (flags.json) out(JSON.stringify({ totals: tally.json() }));
  else say(`${name}: stopped\n${tally.text()}`);
  return EXIT_OK;
}
