/** `authkit capnp-tap`: sit between Proksi and its external_auth service, show and record each check() with what Proksi does. */
import { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { PROKSI_DEFAULTS } from '../capnp/model.js';
import { DEFAULT_CAPNP_TAP_MAX_PENDING, startCapnpTap, type TappedCheck } from '../capnp/tap/tap.js';
import { groupDigits } from '../shared/text.js';
import { capnpLine, capnpRecord } from '../capnp/tap/record.js';
import { choiceOption, exitsWith, integerOption, timeParser } from './io.js';
import { runTap, tapOptions, type TapFlags, type TapHooks } from './tap-run.js';

export interface CapnpTapFlags extends TapFlags {
  listen?: string;
  upstream?: string;
  timeoutMs: number;
  onError: 'deny' | 'allow';
  upstreamHeader: string;
  maxPending?: number;
}

export function capnpTapCommand(hooks: TapHooks = {}): Command {
  return tapOptions(new Command('capnp-tap')
    .description('sit between Proksi and its external_auth service (Unix sockets): relay every byte unchanged, show each check() with what Proksi does, record it for a replay')
    .option('--listen <socket>', 'the Unix socket Proksi\'s external_auth now points at')
    .option('--upstream <socket>', 'the real service\'s Unix socket')
    .option('--timeout-ms <duration>', 'Proksi\'s timeout_ms (a Finish before the Return is its timeout): milliseconds, or a duration like 2s', timeParser('ms', 1, 3_600_000), PROKSI_DEFAULTS.timeoutMs)
    .option('--on-error <mode>', 'Proksi\'s on_error: deny or allow (what a failed call becomes)', choiceOption(['deny', 'allow'] as const), PROKSI_DEFAULTS.onError)
    .option('--upstream-header <name>', 'Proksi\'s upstream_header', PROKSI_DEFAULTS.upstreamHeader)
    .option('--max-pending <n>', `check() calls one connection may have waiting for their Returns; past it the connection is relayed and no longer read (default ${groupDigits(DEFAULT_CAPNP_TAP_MAX_PENDING)}, as capnp-serve's --max-answers)`, integerOption(1, 10_000_000)))
    .addHelpText('after', '\nExample:\n  authkit capnp-tap --listen /run/proksi/auth-tap.sock --upstream /run/proksi/auth.sock --record checks.jsonl --record-secrets')
    .action(exitsWith((flags: CapnpTapFlags) => capnpTap(flags, hooks)));
}

function capnpTap(flags: CapnpTapFlags, hooks: TapHooks): Promise<number> {
  if (flags.listen === undefined) throw new InputError('--listen SOCKET is required (where Proksi\'s external_auth will point)');
  if (flags.upstream === undefined) throw new InputError('--upstream SOCKET is required (the real service)');
  const proksi = { ...PROKSI_DEFAULTS, timeoutMs: flags.timeoutMs, onError: flags.onError, upstreamHeader: flags.upstreamHeader.toLowerCase() };
  return runTap({
    name: 'capnp-tap', flags, hooks,
    record: (check: TappedCheck, keepSecrets: boolean) => capnpRecord(check, keepSecrets, flags.secretHeader),
    line: capnpLine,
    tally: (r) => ({ event: 'check', verdict: r.verdict.split(' ')[0]!, cls: r.proksi.outcome, latencyMs: r.latencyMs, violations: [] }),
    start: (callbacks) => startCapnpTap({ ...callbacks, listen: flags.listen!, upstream: flags.upstream!, proksi, maxPending: flags.maxPending }),
    describe: (relay) => `listening on ${relay.where}, relaying to ${flags.upstream}`,
  });
}
