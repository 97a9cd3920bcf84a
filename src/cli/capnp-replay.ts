/** capnp-check --replay: a capnp-tap recording sent to a service, each new decision set beside the recorded one. */
import { InputError } from '../shared/errors.js';
import { readRecording } from '../tap/recording.js';
import { parseSpeed, ReplayArrivals } from '../tap/replay.js';
import type { AuthRequest } from '../capnp/wire/schema.js';
import { CapnpLoadTarget } from '../capnp/load.js';
import type { LoadFlags } from './load.js';
import { runLoadCli } from './load-run.js';
import { capnpReplayTarget, checkCapnpReplayable } from '../capnp/replay.js';
import type { CapnpRecord } from '../capnp/tap/record.js';
import { finishReplayLoad, replayLoadFlags, runReplay, type ReplayFlags } from './replay-run.js';

export async function runCapnpReplay(flags: ReplayFlags & { socket?: string; timeoutMs: number }): Promise<number> {
  if (flags.socket === undefined) throw new InputError('--socket PATH is required (the service\'s Unix socket)');
  const file = flags.replay!;
  parseSpeed(flags.speed);
  const records = readRecording<CapnpRecord>(file, 'capnp');
  checkCapnpReplayable(records, file);
  const target = capnpReplayTarget(flags.socket, flags.timeoutMs);
  try {
    return await runReplay(flags, records, target, 'capnp-check replay', 'checks');
  } finally {
    target.close();
  }
}

/**
 * --replay FILE --load: the recorded requests as the load engine's arrivals, at the recorded
 * timing scaled by --speed, with every load option; each call's class (pass, block, redirect or
 * how it failed) compared with the recorded one. Exit 3 on a breached threshold, else 1 on a
 * changed class (unless --allow-changes), else 0.
 */
export async function runCapnpReplayLoad(flags: ReplayFlags & LoadFlags & { socket?: string; timeoutMs: number; connections: number }): Promise<number> {
  if (flags.socket === undefined) throw new InputError('--socket PATH is required (the service\'s Unix socket)');
  const file = flags.replay!;
  const speed = parseSpeed(flags.speed);
  const records = readRecording<CapnpRecord>(file, 'capnp');
  checkCapnpReplayable(records, file);
  const source = new ReplayArrivals<CapnpRecord, AuthRequest>(records, speed, (record) => ({ ...record.request }), {
    // As CapnpLoadTarget names outcomes: an action outside the schema is `unknown-action`.
    recordedClass: (record) => (record.decision ? (typeof record.decision.action === 'number' ? 'unknown-action' : record.decision.action) : record.error?.kind ?? 'disconnected'),
    describe: (record) => `${record.request.method} ${record.request.host}${record.request.path} from ${record.request.clientIp}`,
  });
  const parsed = replayLoadFlags(flags, source, records.length);
  const target = new CapnpLoadTarget({ socketPath: flags.socket, request: records[0]!.request, timeoutMs: flags.timeoutMs, connections: flags.connections });
  const started = performance.now();
  const code = await runLoadCli({
    title: `capnp-check --replay ${file} --load`, target, parsed, flags, source, drainMs: flags.timeoutMs + 500,
    settings: [['recording', `${file}, ${records.length} checks at ${speed}x`], ['target', `unix:${flags.socket}, ${flags.connections} connection(s)`]],
  });
  return finishReplayLoad(source, code, flags, file, 'checks', Math.round(performance.now() - started));
}
