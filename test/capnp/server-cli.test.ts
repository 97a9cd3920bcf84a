import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { ROOT } from '../helpers.js';
import { InputError } from '../../src/errors.js';
import { AuthServiceClient, CallError } from '../../src/capnp/client.js';
import { parseRules } from '../../src/capnp/rules.js';
import type { AuthServer } from '../../src/capnp/server.js';
import type { AuthRequest } from '../../src/capnp/schema.js';
import { capnpServeCommand, faultyDecider, serveOptions, type ServeHooks } from '../../src/cli/capnp-serve.js';

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
    expect(serveOptions({ socket: 's', rules: 'r', mode: '0600', latencyMs: '5-10', errorRate: '0.25' })).toEqual({ socket: 's', rules: 'r', mode: 0o600, faults: { latencyMs: [5, 10], errorRate: 0.25 } });
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
