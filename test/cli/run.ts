import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/authkit.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would, with piped (non-TTY) output. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** One clear line on stderr, no stack trace. */
export function expectOneLineError(result: CliResult): string {
  const lines = result.stderr.trim().split('\n');
  if (lines.length !== 1 || /\n\s+at /.test(result.stderr)) throw new Error(`expected one error line, got:\n${result.stderr}`);
  return lines[0]!;
}
