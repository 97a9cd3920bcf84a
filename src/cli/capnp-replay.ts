/** capnp-check --replay: a capnp-tap recording sent to a service, each new decision set beside the recorded one. */
import { InputError } from '../shared/errors.js';
import { readRecording } from '../tap/recording.js';
import { parseSpeed } from '../tap/replay.js';
import { capnpReplayTarget, checkCapnpReplayable } from '../capnp/replay.js';
import type { CapnpRecord } from '../capnp/tap/record.js';
import { runReplay, type ReplayFlags } from './replay-run.js';

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
