/** The authkit command line: subcommands, and one place that turns errors into exit codes. */
import { Command, CommanderError } from 'commander';
import { DecodeError, InputError } from '../shared/errors.js';
import { EXIT_INTERNAL, EXIT_USAGE, log } from './io.js';
import { snellAuthCommand } from './snell-auth.js';
import { snellGenCommand } from './snell-gen.js';
import { xraySimCommand } from './xray-sim/command.js';
import { xrayBackendCommand } from './xray-backend.js';
import { capnpCheckCommand } from './capnp-check.js';
import { capnpServeCommand } from './capnp-serve.js';
import { reportCommand } from './report.js';
import { demoCommand } from './demo.js';
import { snellProbeCommand } from './snell-probe.js';
import { snellServeCommand } from './snell-serve.js';
import { packageVersion } from '../shared/version.js';


export function buildProgram(): Command {
  const program = new Command('authkit')
    .description('Test, reproduce and load-test proxy authentication backends (Snell multi-user, Xray ExtAuth, Proksi external_auth)')
    .enablePositionalOptions()
    .version(packageVersion(), '-V, --version', 'print authkit\'s version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', '\nExamples:\n  authkit demo                      everything, against the built-in simulators\n  authkit snell-gen --psk-env SNELL_PSK --host example.com --port 443');
  program.addCommand(snellGenCommand());
  program.addCommand(snellAuthCommand());
  program.addCommand(snellProbeCommand());
  program.addCommand(snellServeCommand());
  program.addCommand(xraySimCommand());
  program.addCommand(xrayBackendCommand());
  program.addCommand(capnpCheckCommand());
  program.addCommand(capnpServeCommand());
  program.addCommand(reportCommand());
  program.addCommand(demoCommand());
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
    await buildProgram().parseAsync(argv);
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
