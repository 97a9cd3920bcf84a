/**
 * Which flags belong to which mode of a command. A flag given in a mode where it does nothing is
 * a usage error (exit 2, one line naming the modes it belongs to): a `--threshold` on a one-shot
 * run would otherwise exit 0 and gate nothing.
 */
import type { Command, Option } from 'commander';
import { InputError } from '../shared/errors.js';

export interface Mode {
  name: string;
  /** Option attribute names that switch this mode on (`load`, `conformance`); none for the default. */
  switches: string[];
  /** The mode needs all of its switches (`--replay` with `--load`), not any one. */
  together?: boolean;
}

export interface ModeTable {
  /** In order of precedence: the first mode one of whose switches is set is the run's; the last is the default. */
  modes: Mode[];
  /**
   * Long flag (`--threshold`) -> the modes it belongs to, or 'all'. Every flag of the command is
   * listed (a test walks them), so a new flag has to say where it belongs.
   */
  flags: Record<string, readonly string[] | 'all'>;
}

function setByUser(command: Command, option: Option): boolean {
  const source = command.getOptionValueSource(option.attributeName());
  return source === 'cli' || source === 'env';
}

/** The run's mode, from the switches the user set. */
export function activeMode(command: Command, table: ModeTable): Mode {
  const values = command.opts();
  const on = (key: string): boolean => values[key] !== undefined && values[key] !== false;
  const switched = (mode: Mode): boolean => (mode.together ? mode.switches.every(on) : mode.switches.some(on));
  return table.modes.find(switched) ?? table.modes[table.modes.length - 1]!;
}

/** Throws an InputError for the first flag the user gave that the run's mode does not use. */
export function checkModeFlags(command: Command, table: ModeTable): void {
  const values = command.opts();
  const exclusive = table.modes.filter((m) => !m.together && m.switches.length > 0 && m.switches.some((key) => values[key] !== undefined && values[key] !== false));
  const active = activeMode(command, table);
  for (const option of command.options) {
    const flag = option.long ?? option.short ?? '';
    if (!setByUser(command, option)) continue;
    const belongs = table.flags[flag];
    if (belongs === undefined || belongs === 'all' || belongs.includes(active.name)) continue;
    // A switch of another mode set too: two modes at once.
    const other = exclusive.find((m) => m !== active && m.switches.includes(option.attributeName()));
    if (other) throw new InputError(`${flag} (${other.name} mode) and ${active.name} mode exclude each other: choose one`);
    throw new InputError(`${flag} belongs to ${describe(belongs)}; this is a ${active.name} run`);
  }
}

function describe(modes: readonly string[]): string {
  return modes.length === 1 ? `${modes[0]} mode` : `${modes.slice(0, -1).join(', ')} and ${modes[modes.length - 1]} modes`;
}

/** Checks the mode flags before the command's action runs. */
export function withModes(command: Command, table: ModeTable): Command {
  command.hook('preAction', (cmd) => checkModeFlags(cmd, table));
  modeTables.set(command.name(), table);
  return command;
}

/** Every command's table, for the test that walks every flag. */
export const modeTables = new Map<string, ModeTable>();
