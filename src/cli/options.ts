/**
 * Option declarations that several commands share, written once so the same flag has the same
 * help everywhere: where a secret comes from, the conformance flags.
 */
import type { Command } from 'commander';

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
