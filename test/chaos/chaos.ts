/**
 * What every chaos test does to a server it runs as its own process: attack it for a few seconds
 * over loopback or a temporary Unix socket, ask it a good question throughout, then check that it
 * lives, answered, kept its memory and file descriptors bounded, logged every reload, and stops
 * on SIGTERM. Every loop is bounded in count and time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { ROOT } from '../helpers.js';

export interface Served {
  child: ChildProcess;
  /** Everything the server wrote on stderr so far. */
  log(): string;
  stdout(): string;
}

/** Starts `authkit ARGS` and resolves once its stderr matches `ready`. */
export function startServer(args: string[], ready: RegExp): Promise<Served> {
  const child = spawn(process.execPath, [`${ROOT}/bin/authkit.js`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 20 s: ${stderr}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (ready.test(stderr)) {
        clearTimeout(timer);
        resolve({ child, log: () => stderr, stdout: () => stdout });
      }
    });
    child.on('exit', () => reject(new Error(`exited early: ${stderr}`)));
  });
}

export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** SIGTERM, then the time until it exited (Infinity if it did not within `limitMs`). */
export async function stopWithSigterm(child: ChildProcess, limitMs = 5000): Promise<number> {
  const t0 = performance.now();
  const exited = new Promise<number>((resolve) => child.once('exit', () => resolve(performance.now() - t0)));
  child.kill('SIGTERM');
  const result = await Promise.race([exited, new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), limitMs))]);
  if (result === Infinity) child.kill('SIGKILL');
  return result;
}

export type Target = { port: number; host?: string } | { path: string };

/** Sockets the attacks opened, so the test can close every one. */
export class Attacks {
  readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly target: Target) {}

  connect(): net.Socket {
    const socket = 'path' in this.target ? net.connect(this.target.path) : net.connect(this.target.port, this.target.host ?? '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
    this.sockets.add(socket);
    return socket;
  }

  /** `count` connections each sending `bytes` once (then left open unless `end`). */
  send(count: number, bytes: () => Buffer, end = false): void {
    for (let i = 0; i < count; i++) {
      const socket = this.connect();
      socket.once('connect', () => (end ? socket.end(bytes()) : socket.write(bytes())));
    }
  }

  /** `count` connections that open and send nothing. */
  idle(count: number): void {
    for (let i = 0; i < count; i++) this.connect();
  }

  /** Slowloris: `count` connections sending `prefix` a byte every `everyMs`. */
  slow(count: number, prefix: Buffer, everyMs = 200): void {
    for (let i = 0; i < count; i++) {
      const socket = this.connect();
      let at = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || at >= prefix.length) return clearInterval(timer);
        socket.write(prefix.subarray(at, ++at));
      }, everyMs);
      this.timers.add(timer);
    }
  }

  /** Connections that send half of `bytes` and disconnect at once. */
  cut(count: number, bytes: Buffer): void {
    for (let i = 0; i < count; i++) {
      const socket = this.connect();
      socket.once('connect', () => {
        socket.write(bytes.subarray(0, bytes.length >> 1));
        setTimeout(() => socket.destroy(), 10);
      });
    }
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    for (const socket of this.sockets) socket.destroy();
  }
}

/**
 * Asks `ask` every `everyMs` while the attacks run, for `forMs` and at least `minAsks` times
 * (however slow the machine); returns each answer's latency (ms). Every question must be
 * answered: a failure throws.
 */
export async function askThroughout(ask: () => Promise<void>, forMs: number, everyMs = 400, minAsks = 3): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + forMs;
  while (performance.now() < end || latencies.length < minAsks) {
    const t0 = performance.now();
    await ask();
    latencies.push(performance.now() - t0);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return latencies;
}

/** Waits until `condition` holds (polling), at most `ms`; false if it never did. */
export async function within(ms: number, condition: () => boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

/**
 * Replaces the watched `file` with a FIFO, then a link to /dev/zero, then `broken` content, and
 * expects the server to refuse each with a log line (keeping its last good snapshot).
 */
export async function reloadBadFiles(served: Served, file: string, broken: string | Buffer, brokenLine: RegExp = /not reloaded/): Promise<void> {
  for (const [make, logged] of [
    [(p: string) => execFileSync('mkfifo', [p]), /a FIFO, not a regular file/],
    [(p: string) => symlinkSync('/dev/zero', p), /a device, not a regular file/],
    [(p: string) => writeFileSync(p, broken), brokenLine],
  ] as const) {
    replaceFile(file, make);
    if (!(await within(10_000, () => logged.test(served.log())))) throw new Error(`no log line matching ${logged}: ${served.log().slice(-500)}`);
  }
}

/** Puts a new file in `file`'s place in one rename, as an editor or a deploy does. */
export function replaceFile(file: string, make: (path: string) => void): void {
  const next = `${file}.next-${process.hrtime.bigint()}`;
  make(next);
  renameSync(next, file);
}
