/** The authkit command line: subcommands, and one place that turns errors into exit codes. */
import { Command, CommanderError } from 'commander';
import { DecodeError, InputError } from '../shared/errors.js';
import { EXIT_INTERNAL, EXIT_USAGE, loadColors, log } from './io.js';
import { packageVersion } from '../shared/version.js';

/**
 * Each command's module, loaded only when that command runs: loading all of them costs ~0.3 s
 * of start-up (`snell-auth` alone needs a quarter of it), and a trial scan's start-up is part
 * of what `snell-auth` is measured on. Help, --version and an unknown name load them all.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  'snell-gen': async () => (await import('./snell-gen.js')).snellGenCommand(),
  'snell-auth': async () => (await import('./snell-auth.js')).snellAuthCommand(),
  'snell-probe': async () => (await import('./snell-probe.js')).snellProbeCommand(),
  'snell-serve': async () => (await import('./snell-serve.js')).snellServeCommand(),
  'xray-sim': async () => (await import('./xray-sim/command.js')).xraySimCommand(),
  'xray-backend': async () => (await import('./xray-backend.js')).xrayBackendCommand(),
  'xray-tap': async () => (await import('./xray-tap.js')).xrayTapCommand(),
  'capnp-check': async () => (await import('./capnp-check.js')).capnpCheckCommand(),
  'capnp-serve': async () => (await import('./capnp-serve.js')).capnpServeCommand(),
  'capnp-tap': async () => (await import('./capnp-tap.js')).capnpTapCommand(),
  report: async () => (await import('./report.js')).reportCommand(),
  demo: async () => (await import('./demo.js')).demoCommand(),
};

/** The program with every command, or only `only` when it names one. */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('authkit')
    .description('Test, reproduce and load-test proxy authentication backends (Snell multi-user, Xray ExtAuth, Proksi external_auth)')
    .enablePositionalOptions()
    .version(packageVersion(), '-V, --version', 'print authkit\'s version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', '\nExamples:\n  authkit demo                      everything, against the built-in simulators\n  authkit snell-gen --psk-env SNELL_PSK --host example.com --port 443');
  const names = only !== undefined && Object.hasOwn(COMMANDS, only) ? [only] : Object.keys(COMMANDS);
  for (const command of await Promise.all(names.map((name) => COMMANDS[name]!()))) program.addCommand(command);
  program.exitOverride();
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI; resolves to the exit code. Never lets a stack trace reach the user unless AUTHKIT_DEBUG=1. */
export async function main(argv: string[]): Promise<number> {
  process.exitCode = 0;
  try {
    await loadColors();
    await (await buildProgram(argv[2])).parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed its one-line message (or the help).
      return error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : EXIT_USAGE;
    }
    if (error instanceof InputError || error instanceof DecodeError) {
      log(`authkit: ${error.message}`);
      return EXIT_USAGE;
    }
    if (process.env.AUTHKIT_DEBUG === '1') log((error as Error)?.stack ?? String(error));
    else log(`authkit: internal error: ${(error as Error)?.message ?? String(error)} (AUTHKIT_DEBUG=1 shows the stack)`);
    return EXIT_INTERNAL;
  }
}
