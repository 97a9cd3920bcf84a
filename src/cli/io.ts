/** What every subcommand shares: exit codes, colours, secrets, files and flag parsers. */
import { FileReadError, readBoundedFileSync, type ReadLimits } from '../shared/files.js';
import type { ChalkInstance } from 'chalk';
import { InvalidArgumentError } from 'commander';
import { parseTime, type TimeUnit } from '../shared/duration.js';
import { describeFsError, InputError } from '../shared/errors.js';
import { HTTP_TOKEN } from '../shared/text.js';

export { describeFsError };

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** A bug in authkit, not a verdict on the backend: BSD's EX_SOFTWARE. */
export const EXIT_INTERNAL = 70;

/** Colours only on a terminal, and never when NO_COLOR is set (no-color.org). */
function colorsWanted(): boolean {
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  return process.stdout.isTTY === true && !noColor;
}

/**
 * chalk, loaded by main() only when stdout will be coloured: piped output (CI, scripts, the
 * bench) never needs it, and loading it is ~10 ms of every command's start-up.
 */
let chalk: typeof import('chalk') | undefined;

export async function loadColors(): Promise<void> {
  if (colorsWanted()) chalk ??= await import('chalk');
}

/**
 * What chalk is at level 0, without chalk: every style, chained or called, gives the text back
 * as chalk does (one argument as String() makes it, several joined by spaces). Only styles by
 * name: no hex(), rgb() or ansi256(), which the code does not use. Not a thenable.
 */
const PLAIN: ChalkInstance = new Proxy(() => undefined, {
  get: (_target, key) => (key === 'level' ? 0 : key === 'then' ? undefined : PLAIN),
  apply: (_target, _this, texts: unknown[]) => (texts.length === 1 ? String(texts[0]) : texts.join(' ')),
}) as unknown as ChalkInstance;

export function stdoutColors(): ChalkInstance {
  if (!colorsWanted()) return PLAIN;
  if (!chalk) throw new Error('stdoutColors() before loadColors()');
  return new chalk.Chalk({ level: 1 });
}

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A file named by a flag: regular, bounded (the one loader), errors naming the flag. */
export function readBinaryFile(path: string, what: string, limits: ReadLimits = {}): Buffer {
  try {
    return readBoundedFileSync(path, limits);
  } catch (error) {
    throw new InputError(`${what} ${path}: ${error instanceof FileReadError ? error.why : describeFsError(error)}`);
  }
}


export interface SecretSources {
  value?: string;
  file?: string;
  env?: string;
}

/**
 * A secret from exactly one of a flag, a file (one trailing newline dropped) or an environment
 * variable. Flags are visible in `ps` (secretOnCommandLine is the note to print then).
 */
export function readSecret(sources: SecretSources, flag: string): string | undefined {
  const given = [sources.value, sources.file, sources.env].filter((s) => s !== undefined).length;
  if (given > 1) throw new InputError(`give the ${flag} once: --${flag}, --${flag}-file or --${flag}-env`);
  if (sources.value !== undefined) {
    if (sources.value === '') throw new InputError(`--${flag} is empty`);
    return sources.value;
  }
  if (sources.file !== undefined) {
    const text = readBinaryFile(sources.file, `--${flag}-file`).toString('utf8').replace(/\r?\n$/, '');
    if (text === '') throw new InputError(`--${flag}-file ${sources.file} is empty`);
    return text;
  }
  if (sources.env !== undefined) {
    const text = process.env[sources.env];
    if (text === undefined || text === '') throw new InputError(`--${flag}-env: environment variable ${sources.env} is not set or empty`);
    return text;
  }
  return undefined;
}

/**
 * The note for a secret given on the command line, where other local users see it in `ps`;
 * each command prints it once its flags have passed, so bad input stays one line.
 */
export function secretOnCommandLine(flag: string): string {
  return `--${flag} is visible to other local users in ps; --${flag}-env or --${flag}-file keep it private`;
}

export function integerOption(min: number, max: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return value;
  };
}

export function choiceOption<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text) => {
    if (!(choices as readonly string[]).includes(text)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return text as T;
  };
}

/** Adapts an action that returns its exit code to commander, which expects void. */
export function exitsWith<A extends unknown[]>(action: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    process.exitCode = await action(...args);
  };
}

/** Seconds, from a duration (`500ms`, `2s`) or a bare number of seconds; `flag` names the flag in the error. */
export function parseSeconds(text: string, flag: string, range: { min?: number; max?: number } = {}): number {
  return parseTime(text, flag, 's', range);
}

/** Commander's parser for a seconds flag (its own error wording adds the flag name). */
export function secondsOption(text: string): number {
  return timeParser('s', 0, 86_400)(text);
}

/**
 * Commander's parser for a time flag: a duration (`500ms`, `2s`) or a bare number in `unit`
 * (what the flag took before), returned in `unit`.
 */
export function timeParser(unit: TimeUnit, min: number, max: number): (text: string) => number {
  return (text) => {
    try {
      return parseTime(text, 'value', unit, { min, max });
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message.replace(/^value: /, ''));
    }
  };
}

/** Names that frame the request or belong to the connection: a configured header may not set them. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'proxy-connection']);

/** `--header 'Name: value'`. The value may be a token, so it never appears in a message. */
export function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = text.slice(0, Math.max(colon, 0)).trim();
  const value = text.slice(colon + 1).trim();
  if (colon < 1 || name === '' || value === '') throw new InputError("--header: expected 'Name: value' with a non-empty name and value");
  if (!HTTP_TOKEN.test(name)) throw new InputError(`--header: "${name}" is not a valid header name`);
  if (FRAMING_HEADERS.has(name.toLowerCase())) throw new InputError(`--header: ${name} is set by the HTTP client, not configurable`);
  if (/[\r\n\0]/.test(value)) throw new InputError(`--header: the value of ${name} contains a line break or NUL`);
  return [name, value];
}

/** Resolves on SIGINT, SIGTERM or the hook's abort; a second signal then ends the process as usual. */
export function stopRequested(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    if (signal?.aborted) return stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/** `N` or `N-M` milliseconds. */
export function parseLatency(text: string): [number, number] {
  const refuse = (): never => {
    throw new InputError(`--latency-ms: expected N or N-M milliseconds with N <= M (or durations, 5ms-1s), got "${text}"`);
  };
  const [low = '', high, extra] = text.split('-');
  if (extra !== undefined) refuse();
  let min: number;
  let max: number;
  try {
    min = parseTime(low, '--latency-ms', 'ms', { max: 10_000_000 });
    max = high === undefined ? min : parseTime(high, '--latency-ms', 'ms', { max: 10_000_000 });
  } catch {
    return refuse();
  }
  if (max < min) refuse();
  return [min, max];
}

export function parseRate(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) || value > 1) throw new InputError(`${flag}: expected a share from 0 to 1 (0.05 = 5 %), got "${text}"`);
  return value;
}

/**
 * How a test or a program embeds a simulator command: where its log lines go, a signal that stops
 * it as SIGINT does, what it tells once it listens, and how often it polls its data file.
 */
export interface ServerHooks<Listening> {
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Called once the server listens. */
  onListening?: (listening: Listening) => void;
  /** The users or rules file's polling interval in ms (tests); default 1000. */
  pollMs?: number;
}
