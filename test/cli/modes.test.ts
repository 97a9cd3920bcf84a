/**
 * Every flag of every command with modes, walked through its table: each flag is placed, and a
 * flag given in a mode it does not belong to is exit 2 with one line naming its modes.
 */
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { modeTables, type Mode } from '../../src/cli/modes.js';
import { runMain } from './run.js';

/** A value each flag accepts, so only the mode check can refuse it. */
const SAMPLES: Record<string, string> = {
  '--dialect': 'wiki', '--event': 'authorization', '--obfs': 'off', '--on-error': 'deny', '--command': 'connect',
  '--padding-style': 'random', '--format': 'hex', '--client-ip': '1.2.3.4:5',
};

async function commandsWithModes(): Promise<{ command: Command; table: NonNullable<ReturnType<typeof modeTables.get>> }[]> {
  const program = await buildProgram();
  const all = [...program.commands, ...program.commands.flatMap((c) => c.commands)];
  return all.flatMap((command) => {
    const table = modeTables.get(command.name());
    return table ? [{ command, table }] : [];
  });
}

function argsFor(option: Option): string[] {
  const flag = option.long!;
  return option.required || option.optional ? [flag, SAMPLES[flag] ?? '1'] : [flag];
}

/** The flags that make a run `mode`: its first switch, or all of them for a mode that needs them together. */
function switchArgs(command: Command, mode: Mode): string[] {
  const keys = mode.together ? mode.switches : mode.switches.slice(0, 1);
  return keys.flatMap((key) => argsFor(command.options.find((o) => o.attributeName() === key)!));
}

const commands = await commandsWithModes();

describe('which flags belong to which mode', () => {

  it('covers the commands with several modes', () => {
    expect(commands.map((c) => c.command.name()).sort()).toEqual(['capnp-check', 'snell-auth', 'snell-gen', 'snell-probe', 'xray-sim']);
  });

  it.each(commands.map((c) => [c.command.name(), c] as const))('%s: every flag is in the table', (_name, { command, table }) => {
    const missing = command.options.map((o) => o.long!).filter((flag) => flag !== '--help' && !(flag in table.flags));
    expect(missing).toEqual([]);
  });

  it.each(commands.map((c) => [c.command.name(), c] as const))('%s: a flag outside its modes is exit 2, naming them', async (name, { command, table }) => {
    let walked = 0;
    for (const option of command.options) {
      const belongs = table.flags[option.long!];
      if (belongs === undefined || belongs === 'all') continue;
      const switchOf = table.modes.findIndex((m) => m.switches.includes(option.attributeName()));
      for (const [index, mode] of table.modes.entries()) {
        if (belongs.includes(mode.name)) continue;
        // A switch of a mode that takes precedence makes the run that mode: nothing to refuse.
        if (switchOf >= 0 && switchOf < index) continue;
        const args = [...switchArgs(command, mode), ...argsFor(option)];
        const result = await runMain([...(name === 'bench' ? ['snell-auth'] : []), name, ...args]);
        expect(result.code, `${name} ${args.join(' ')}`).toBe(2);
        expect(result.stderr.trim().split('\n'), `${name} ${args.join(' ')}`).toHaveLength(1);
        const expected = switchOf >= 0 ? /^authkit: --\S+ \(\S+ mode\) and \S+ mode exclude each other: choose one$/m : new RegExp(`^authkit: ${option.long} belongs to .*${belongs[0]}`);
        expect(result.stderr, `${name} ${args.join(' ')}`).toMatch(expected);
        walked++;
      }
    }
    expect(walked).toBeGreaterThan(0);
  });

  it('the issue\'s cases: --threshold without --load, --load with --conformance, --junit without --conformance', async () => {
    const threshold = await runMain(['xray-sim', '--url', 'http://127.0.0.1:1/', '--credential', 'x', '--threshold', 'p99<1ms']);
    expect(threshold).toMatchObject({ code: 2, stderr: 'authkit: --threshold belongs to load and replay-load modes; this is a one-shot run\n' });
    const both = await runMain(['capnp-check', '--socket', '/x', '--conformance', '--load']);
    expect(both).toMatchObject({ code: 2, stderr: 'authkit: --load (load mode) and conformance mode exclude each other: choose one\n' });
    const junit = await runMain(['capnp-check', '--socket', '/x', '--junit', 'r.xml']);
    expect(junit).toMatchObject({ code: 2, stderr: 'authkit: --junit belongs to conformance and replay modes; this is a one-shot run\n' });
    const badRatio = await runMain(['snell-probe', '--server', '127.0.0.1:1', '--psk', 'x', '--ping', '--bad-ratio', '0.1']);
    expect(badRatio).toMatchObject({ code: 2, stderr: 'authkit: --bad-ratio belongs to load mode; this is a one-shot run\n' });
  });
});
