import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { ROOT } from '../../helpers.js';
import { InputError } from '../../../src/shared/errors.js';
import { AuthServiceClient, CallError } from '../../../src/capnp/client.js';
import { parseRules } from '../../../src/capnp/server/rules.js';
import type { AuthServer } from '../../../src/capnp/server/server.js';
import type { AuthRequest } from '../../../src/capnp/wire/schema.js';
import { capnpServeCommand, faultyDecider, serveOptions, type ServeFlags, type ServeHooks } from '../../../src/cli/capnp-serve.js';
import { FrameReader } from '../../../src/capnp/wire/codec.js';
import { encodeBootstrap, readRpcMessage, type RpcMessage } from '../../../src/capnp/wire/rpc.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-capnp-serve-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const RULES = join(ROOT, 'fixtures', 'capnp-serve', 'rules.json');

const clients: AuthServiceClient[] = [];
const stops: AbortController[] = [];
const runs: Promise<void>[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  stops.splice(0).forEach((s) => s.abort());
  await Promise.all(runs.splice(0));
});

let counter = 0;
const socketPath = (): string => join(dir, `cli${counter++}.sock`);

function request(over: Partial<AuthRequest> = {}, headers: [string, string][] = []): AuthRequest {
  return { method: 'GET', host: 'app.example', path: '/', query: '', clientIp: '203.0.113.7:51234', headers: headers.map(([name, value]) => ({ name, value })), ...over };
}

/** Parses `args` as `authkit capnp-serve ARGS` would; rejects with the InputError or CommanderError. */
async function run(args: string[], hooks: ServeHooks = {}): Promise<{ stderr: string[] }> {
  const stderr: string[] = [];
  const command = capnpServeCommand({ log: (l) => stderr.push(l), ...hooks }).exitOverride().configureOutput({ writeErr: (s) => stderr.push(s.trimEnd()), writeOut: () => {} });
  await command.parseAsync(args, { from: 'user' });
  return { stderr };
}

async function usageError(args: string[]): Promise<string> {
  try {
    await run(args);
  } catch (error) {
    if (error instanceof InputError) return error.message;
    if (error instanceof CommanderError) return `commander: ${error.message}`;
    throw error;
  }
  throw new Error('expected a usage error');
}

/** Starts the command in the background; resolves once it listens. */
async function serve(args: string[], pollMs?: number): Promise<{ server: AuthServer; lines: string[]; stop: () => Promise<void> }> {
  const lines: string[] = [];
  const stop = new AbortController();
  stops.push(stop);
  let listening!: (server: AuthServer) => void;
  const ready = new Promise<AuthServer>((resolve) => (listening = resolve));
  const done = run(args, { log: (l) => lines.push(l), signal: stop.signal, onListening: listening, pollMs }).then(() => undefined);
  runs.push(done);
  const server = await Promise.race([ready, done.then(() => Promise.reject(new Error('capnp-serve ended before listening'))), timeout(5000)]);
  return { server, lines, stop: async () => {
    stop.abort();
    await done;
  } };
}

function timeout(ms: number): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms).unref());
}

async function connect(path: string): Promise<AuthServiceClient> {
  const client = await AuthServiceClient.connect(path, 2000);
  clients.push(client);
  return client;
}

describe('authkit capnp-serve: flags', () => {
  it('usage errors are one InputError line naming the flag', async () => {
    expect(await usageError(['--rules', RULES])).toBe('--socket PATH is required (the Unix socket to listen on)');
    expect(await usageError(['--socket', socketPath()])).toBe('--rules FILE is required (see fixtures/capnp-serve/rules.json)');
    expect(await usageError(['--socket', socketPath(), '--rules', RULES, '--mode', '999'])).toBe('--mode: expected octal permissions such as 660 or 0600, got "999"');
    expect(await usageError(['--socket', socketPath(), '--rules', RULES, '--mode', 'rw'])).toBe('--mode: expected octal permissions such as 660 or 0600, got "rw"');
    expect(await usageError(['--socket', socketPath(), '--rules', RULES, '--latency-ms', '50-10'])).toBe('--latency-ms: expected N or N-M milliseconds with N <= M (or durations, 5ms-1s), got "50-10"');
    expect(await usageError(['--socket', socketPath(), '--rules', RULES, '--error-rate', '1.5'])).toBe('--error-rate: expected a share from 0 to 1 (0.05 = 5 %), got "1.5"');
    expect(await usageError(['--socket', socketPath(), '--rules', RULES, '--latency', '5'])).toMatch(/^commander: error: unknown option '--latency'/);
  });

  it('a missing or broken rules file, or a path that is not a socket, is a usage error; nothing is left listening', async () => {
    const missing = join(dir, 'missing.json');
    expect(await usageError(['--socket', socketPath(), '--rules', missing])).toBe(`rules file ${missing}: no such file`);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, JSON.stringify({ rules: [{ match: {}, decision: { action: 'pass', upstreamValue: 'x' } }, { match: { pathRegex: '[' }, decision: { action: 'block' } }] }));
    expect(await usageError(['--socket', socketPath(), '--rules', broken])).toBe(`${broken}: rules[1].match.pathRegex: invalid regular expression (unterminated character class)`);
    const file = join(dir, 'regular-file');
    writeFileSync(file, '');
    expect(await usageError(['--socket', file, '--rules', RULES])).toBe(`socket ${file}: exists and is not a socket (not replaced)`);
  });

  it('serveOptions: mode in octal, faults parsed', () => {
    expect(serveOptions({ socket: 's', rules: 'r', mode: '0600', latencyMs: '5-10', errorRate: '0.25' })).toEqual({
      socket: 's', rules: 'r', mode: 0o600, faults: { latencyMs: [5, 10], errorRate: 0.25 }, limits: { maxAnswers: 65536, maxPartialBytes: 256 * 1024 * 1024, traversalWords: 512 * 1024 },
    });
  });

  it('--max-answers, --max-partial-bytes (bytes, or KiB/MiB/GiB) and --traversal-limit (words)', async () => {
    const limits = (extra: Partial<ServeFlags>): unknown => serveOptions({ socket: 's', rules: 'r', mode: '660', ...extra }).limits;
    expect(limits({ maxAnswers: '100', maxPartialBytes: '1048576', traversalLimit: '4096' })).toEqual({ maxAnswers: 100, maxPartialBytes: 1048576, traversalWords: 4096 });
    expect(limits({ maxPartialBytes: '64MiB' })).toMatchObject({ maxPartialBytes: 64 * 1024 * 1024 });
    expect(limits({ maxPartialBytes: '512k' })).toMatchObject({ maxPartialBytes: 512 * 1024 });
    expect(limits({ maxPartialBytes: '1GiB' })).toMatchObject({ maxPartialBytes: 1024 ** 3 });
    const base = ['--socket', socketPath(), '--rules', RULES];
    expect(await usageError([...base, '--max-answers', '0'])).toBe('--max-answers: expected a number of answers from 1 to 4294967296, got "0"');
    expect(await usageError([...base, '--max-answers', 'lots'])).toBe('--max-answers: expected a number of answers from 1 to 4294967296, got "lots"');
    expect(await usageError([...base, '--traversal-limit', '4MiB'])).toBe('--traversal-limit: expected a number of words (8 bytes each) from 1 to 4294967296, got "4MiB"');
    expect(await usageError([...base, '--max-partial-bytes', '256MB'])).toBe('--max-partial-bytes: expected bytes from 1 to 1024TiB, such as 268435456 or 256MiB, got "256MB"');
    expect(await usageError([...base, '--max-partial-bytes', '0'])).toBe('--max-partial-bytes: expected bytes from 1 to 1024TiB, such as 268435456 or 256MiB, got "0"');
  });

  it('--help names the three limits, their defaults and the traversal limit\'s unit', () => {
    const help = capnpServeCommand().helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(/--max-answers <n> answers one connection may hold .*\(default 65536\)/);
    expect(help).toMatch(/--max-partial-bytes <bytes> bytes all connections together .*\(default 256MiB\)/);
    expect(help).toMatch(/--traversal-limit <words> words \(8 bytes each\) .*\(default 524288 words = 4 MiB\)/);
  });
});

describe('authkit capnp-serve: running', () => {
  it('serves the demo rules, logs the listening line and one line per call, sets the mode, stops cleanly and removes its socket', async () => {
    const path = socketPath();
    const { lines, stop } = await serve(['--socket', path, '--rules', RULES, '--mode', '600']);
    expect(lines[0]).toBe(`capnp-serve: 3 rules from ${RULES} (default block 401), listening on unix:${path} (mode 600)`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const client = await connect(path);
    expect((await client.check(request({}, [['authorization', 'Bearer good']]), { timeoutMs: 2000 })).decision).toMatchObject({ action: 'pass', upstreamValue: 'user=alice' });
    expect((await client.check(request({ path: '/admin' }), { timeoutMs: 2000 })).decision).toMatchObject({ action: 'block', statusCode: 403 });
    expect((await client.check(request({ path: '/login' }), { timeoutMs: 2000 })).decision).toMatchObject({ action: 'redirect', statusCode: 302 });
    expect((await client.check(request({ path: '/x' }), { timeoutMs: 2000 })).decision).toMatchObject({ action: 'block', statusCode: 401 });
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^conn 1: GET app\.example \/ -> pass 0 \(/),
      expect.stringMatching(/^conn 1: GET app\.example \/admin -> block 403 \(/),
      expect.stringMatching(/^conn 1: GET app\.example \/login -> redirect 302 \(/),
      expect.stringMatching(/^conn 1: GET app\.example \/x -> block 401 \(/),
    ]);
    await stop();
    expect(lines.at(-1)).toBe('capnp-serve: stopping');
    expect(existsSync(path)).toBe(false);
  });

  it('stops on SIGTERM (exit code 0)', async () => {
    const before = new Set(process.listeners('SIGTERM'));
    const path = socketPath();
    const { lines } = await serve(['--socket', path, '--rules', RULES, '--quiet']);
    const added = process.listeners('SIGTERM').filter((l) => !before.has(l));
    expect(added).toHaveLength(1);
    process.exitCode = undefined;
    (added[0] as (signal: NodeJS.Signals) => void)('SIGTERM');
    await Promise.all(runs.splice(0));
    expect(process.exitCode).toBe(0);
    process.exitCode = undefined;
    expect(lines.at(-1)).toBe('capnp-serve: stopping');
    expect(existsSync(path)).toBe(false);
    expect(process.listeners('SIGTERM').filter((l) => !before.has(l))).toHaveLength(0);
  });

  it('--error-rate 1 answers every call with an exception Return; --latency-ms delays the decision', async () => {
    const failing = await serve(['--socket', socketPath(), '--rules', RULES, '--error-rate', '1']);
    expect(failing.lines[0]).toMatch(/, error rate 1, listening on/);
    const client = await connect(failing.server.path);
    const error = await client.check(request(), { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallError);
    expect((error as CallError).message).toBe('failed: injected failure (--error-rate)');

    const slow = await serve(['--socket', socketPath(), '--rules', RULES, '--latency-ms', '60']);
    const second = await connect(slow.server.path);
    const { latencyMs, decision } = await second.check(request(), { timeoutMs: 2000 });
    expect(decision.statusCode).toBe(401);
    expect(latencyMs).toBeGreaterThanOrEqual(55);
  });

  it('the three limits reach the server: a Bootstrap flood past --max-answers, a partial frame past --max-partial-bytes, params past --traversal-limit', async () => {
    const { server, lines } = await serve(['--socket', socketPath(), '--rules', RULES, '--quiet', '--max-answers', '5', '--max-partial-bytes', '1MiB', '--traversal-limit', '1024']);
    const client = await connect(server.path);
    const big = await client.check(request({}, [['x-big', 'a'.repeat(64 * 1024)]]), { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect((big as CallError).message).toMatch(/^failed: cannot read the check\(\) params: .*traversal limit exceeded/);
    expect((await client.check(request({ path: '/admin' }), { timeoutMs: 2000 })).decision.statusCode).toBe(403);

    const flood = await exchange(server.path, [Buffer.concat(Array.from({ length: 10 }, (_, q) => encodeBootstrap(q)))]);
    expect(flood.map((m) => m.type)).toEqual(['return', 'return', 'return', 'return', 'return', 'abort']);

    const header = Buffer.alloc(8);
    header.writeUInt32LE(0, 0);
    header.writeUInt32LE((2 * 1024 * 1024) / 8, 4); // a 2 MiB segment announced, 1 MiB + 8 bytes of it sent
    const partial = await exchange(server.path, [header, Buffer.alloc(1024 * 1024)]);
    expect(partial).toMatchObject([{ type: 'abort', exception: { type: 'overloaded', reason: expect.stringMatching(/more than 1048576 bytes/) } }]);

    expect((await client.check(request({ path: '/login' }), { timeoutMs: 2000 })).decision.action).toBe('redirect');
    expect(server.stats()).toMatchObject({ aborted: 2, abortedMaxAnswers: 1, abortedMaxPartialBytes: 1, exceptions: 1, partialBytes: 0 });
    expect(lines.filter((l) => / aborted: /.test(l))).toHaveLength(2);
  });

  it('reloads the rules when the file changes and keeps the last good ones when it breaks', async () => {
    const rules = join(dir, 'live-rules.json');
    copyFileSync(RULES, rules);
    const { server, lines } = await serve(['--socket', socketPath(), '--rules', rules], 20);
    const client = await connect(server.path);
    const statusOf = async (path: string): Promise<number> => (await client.check(request({ path }), { timeoutMs: 2000 })).decision.statusCode;
    expect(await statusOf('/admin')).toBe(403);
    writeFileSync(rules, JSON.stringify({ rules: [{ match: { pathPrefix: '/admin' }, decision: { action: 'block', statusCode: 404 } }] }));
    const deadline = Date.now() + 3000;
    while ((await statusOf('/admin')) !== 404) {
      if (Date.now() > deadline) throw new Error('rules not reloaded within 3 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    writeFileSync(rules, '{"rules": [{"match": {"pathRegex": "("}, "decision": {"action": "pass"}}]}');
    const logged = Date.now() + 3000;
    while (!lines.some((l) => /not reloaded, keeping the last good rules \(1\): .*rules\[0\]\.match\.pathRegex: invalid regular expression/.test(l))) {
      if (Date.now() > logged) throw new Error('no log line about the broken file within 3 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await statusOf('/admin')).toBe(404);
  });
});

/** Writes raw bytes; resolves with what came back once the server closed the connection (or after 5 s). */
function exchange(path: string, bytes: Uint8Array[]): Promise<RpcMessage[]> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ path });
    const frames = new FrameReader();
    const messages: RpcMessage[] = [];
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('connect', () => bytes.forEach((b) => socket.write(b)));
    socket.on('data', (chunk) => {
      for (const segments of frames.push(chunk)) messages.push(readRpcMessage(segments));
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(messages);
    });
  });
}

describe('faultyDecider', () => {
  const set = parseRules('{"rules": []}', 'r');
  it('without faults it decides synchronously', () => {
    expect(faultyDecider(() => set, {})(request())).toMatchObject({ action: 'block', statusCode: 401 });
  });
  it('the error rate throws for a share of calls (a seeded random)', () => {
    const decide = faultyDecider(() => set, { errorRate: 0.5 }, () => 0.4);
    expect(() => decide(request())).toThrow('injected failure (--error-rate)');
    expect(faultyDecider(() => set, { errorRate: 0.5 }, () => 0.6)(request())).toMatchObject({ statusCode: 401 });
  });
});
