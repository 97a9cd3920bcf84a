/**
 * Builds and drives the interop peers on the official Cap'n Proto C++ library (Debian's capnproto
 * and libcapnp-dev): server.c++ (an EzRpcServer implementing ExternalAuthService.check, steered by
 * the request) and client.c++ (an EzRpcClient). See the comments at the top of each for the rules
 * and the command line. Node built-ins only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../../fixtures/capnp/', import.meta.url));
const SOURCES = [join(HERE, 'server.c++'), join(HERE, 'client.c++')];
const SCHEMAS = [join(FIXTURES, 'external_auth.capnp'), join(FIXTURES, 'external_auth_wrong_id.capnp')];
const CXX = process.env.CXX ?? 'g++';

/** ExternalAuthService's interface ID with the right file ID, and with the wrong one (…a14). */
export const INTERFACE_ID = 0xe33a260d84ec3ad3n;
export const WRONG_INTERFACE_ID = 0xedc51776cb11af7cn;

function runs(command: string, args: string[]): string | undefined {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

let availability: boolean | undefined;
/** Whether `capnp`, the C++ headers, pkg-config's capnp-rpc and a C++ compiler are all installed. */
export function capnpAvailable(): boolean {
  availability ??=
    runs('capnp', ['--version']) !== undefined &&
    runs('pkg-config', ['--exists', 'capnp-rpc']) !== undefined &&
    runs(CXX, ['--version']) !== undefined &&
    existsSync(join(runs('pkg-config', ['--variable=includedir', 'capnp-rpc']) ?? '/usr/include', 'capnp', 'ez-rpc.h'));
  return availability;
}

export interface Peers {
  /** The server built against fixtures/capnp/external_auth.capnp (file ID …a13). */
  server: string;
  /** The same server built against external_auth_wrong_id.capnp (file ID …a14). */
  wrongIdServer: string;
  /** The client built against external_auth_wrong_id.capnp. */
  wrongIdClient: string;
  client: string;
}

function exec(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed (${code}):\n${stderr}`)),
    );
  });
}

async function build(dir: string): Promise<void> {
  for (const schema of SCHEMAS) await copyFile(schema, join(dir, schema.slice(FIXTURES.length)));
  await exec('capnp', ['compile', '-oc++', 'external_auth.capnp', 'external_auth_wrong_id.capnp'], dir);
  const flags = (runs('pkg-config', ['--cflags', 'capnp-rpc']) ?? '').split(/\s+/).filter(Boolean);
  const libs = (runs('pkg-config', ['--libs', 'capnp-rpc']) ?? '').split(/\s+/).filter(Boolean);
  const cxx = (out: string, source: string, schema: string, ...defines: string[]) =>
    exec(CXX, ['-std=c++17', '-O2', ...defines, '-I.', ...flags, '-o', out, source, schema, ...libs], dir);
  await Promise.all([
    cxx('server', SOURCES[0]!, 'external_auth.capnp.c++'),
    cxx('server-wrong-id', SOURCES[0]!, 'external_auth_wrong_id.capnp.c++', '-DWRONG_ID'),
    cxx('client', SOURCES[1]!, 'external_auth.capnp.c++'),
    cxx('client-wrong-id', SOURCES[1]!, 'external_auth_wrong_id.capnp.c++', '-DWRONG_ID'),
  ]);
  await writeFile(join(dir, 'complete'), '');
}

let built: Promise<Peers> | undefined;
/**
 * Compiles the peers once into `<tmpdir>/authkit-capnp-peers/<hash of sources, schemas and
 * toolchain>/` and reuses them in later runs. Concurrent builders (vitest workers, parallel CI
 * jobs) each build in a private directory and rename it into place; the first rename wins.
 */
export function buildPeers(): Promise<Peers> {
  built ??= (async () => {
    const hash = createHash('sha256');
    for (const file of [...SOURCES, ...SCHEMAS]) hash.update(file.slice(file.lastIndexOf('/'))).update(await readFile(file));
    hash.update(`${runs('capnp', ['--version'])}\n${runs(CXX, ['--version'])}\n${runs('pkg-config', ['--cflags', '--libs', 'capnp-rpc'])}`);
    const cache = join(tmpdir(), 'authkit-capnp-peers');
    const dir = join(cache, hash.digest('hex').slice(0, 16));
    const peers = { server: join(dir, 'server'), wrongIdServer: join(dir, 'server-wrong-id'), client: join(dir, 'client'), wrongIdClient: join(dir, 'client-wrong-id') };
    if (existsSync(join(dir, 'complete'))) return peers;
    await mkdir(cache, { recursive: true });
    const work = join(cache, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(work);
    try {
      await build(work);
      await rename(work, dir).catch(async (error: NodeJS.ErrnoException) => {
        // Someone else finished first (ENOTEMPTY/EEXIST); theirs is as good as ours.
        if (!existsSync(join(dir, 'complete'))) throw error;
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return peers;
  })();
  built.catch(() => (built = undefined));
  return built;
}

const tempDirs = new Set<string>();
/** A fresh socket path in a private temporary directory (short enough for sun_path); stop() removes it. */
export function tempSocketPath(name = 'auth.sock'): string {
  const dir = mkdtempSync(join(tmpdir(), 'capnp-'));
  tempDirs.add(dir);
  return join(dir, name);
}

export interface RunningServer {
  child: ChildProcess;
  /** Every stdout line so far: "listening", then "delayed N" / "cancelled N" for x-delay-ms calls. */
  lines: string[];
  /** Resolves with the first line (already seen or future) that matches, or rejects after `ms`. */
  waitForLine(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves when the process has exited (on its own, e.g. after x-exit, or by stop()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts a server binary on `socketPath` and waits (at most 10 s) until it prints `listening`. */
export async function startServer(binary: string, socketPath: string): Promise<RunningServer> {
  const child = spawn(binary, [socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.pattern.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const spawnError = new Promise<never>((_, reject) => child.on('error', reject));
  const waitForLine = (pattern: RegExp, ms = 5000): Promise<string> => {
    const seen = lines.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const waiter = { pattern, resolve: (line: string) => (clearTimeout(timer), resolve(line)) };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`server printed no line matching ${pattern} within ${ms} ms; stdout: ${JSON.stringify(lines)}, stderr: ${stderr}`));
      }, ms);
      waiters.push(waiter);
    });
  };
  const stop = async (): Promise<void> => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(force);
    }
    await rm(socketPath, { force: true });
    const dir = dirname(socketPath);
    if (tempDirs.delete(dir)) await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitForLine(/^listening$/, 10_000),
      spawnError,
      exited.then(({ code, signal }) => {
        throw new Error(`server exited (${code ?? signal}) before listening: ${stderr}`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { child, lines, waitForLine, exited, stderr: () => stderr, stop };
}

export interface ClientResult {
  /** Exit code; null when killed (after the time limit). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs the client binary against `socketPath`; killed after `timeoutMs` (default 30 s). */
export function runClient(binary: string, socketPath: string, args: string[] = [], timeoutMs = 30_000): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [socketPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => (clearTimeout(timer), reject(error)));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

export interface Decision {
  action: 'pass' | 'block' | 'redirect' | number;
  statusCode: number;
  upstreamValue: string;
  redirectLocation: string;
  responseBody: string;
}
export interface ClientSummary {
  calls: number;
  seconds: number;
  callsPerSec: number;
  /** The client's CPU time (user + system) over those seconds. */
  cpuSeconds: number;
}

/** Splits the client's stdout into the `--print` decisions and the final summary line. */
export function parseClientOutput(stdout: string): { decisions: Decision[]; summary: ClientSummary | undefined } {
  const objects = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const summary = objects.length > 0 && 'callsPerSec' in objects[objects.length - 1] ? objects.pop() : undefined;
  return { decisions: objects, summary };
}
