import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, runCli, runMain } from './run.js';

const BIN = fileURLToPath(new URL('../../bin/authkit.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'authkit-snell-net-cli-'));
const usersFile = join(dir, 'users.txt');
const children: ChildProcess[] = [];
const closers: (() => void)[] = [];
let port: number;
let serve: ChildProcess;
let serveStderr = '';

function startServe(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [BIN, 'snell-serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      serveStderr += c.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.on('close', () => reject(new Error(`snell-serve ended: ${text}`)));
  });
}

beforeAll(async () => {
  writeFileSync(usersFile, 'alice:alice-psk\nbob:bob-psk\n');
  ({ child: serve, port } = await startServe(['--users', usersFile, '--echo', '--stats-json', join(dir, 'stats.json')]));
});
afterAll(() => {
  children.forEach((c) => c.kill('SIGKILL'));
  closers.forEach((close) => close());
});

const probe = (args: string[], env: Record<string, string> = {}) => runMain(['snell-probe', '--server', `127.0.0.1:${port}`, ...args], env);

describe('snell-probe against snell-serve', () => {
  it('PING with the PSK from the environment: exit 0, the JSON the issue names, no PSK printed', async () => {
    const result = await probe(['--psk-env', 'SNELL_PSK', '--ping', '--json'], { SNELL_PSK: 'alice-psk' });
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(Object.keys(json)).toEqual(['outcome', 'reply', 'connectMs', 'firstByteMs', 'totalMs', 'user']);
    expect(json).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' }, user: null });
    expect(result.stdout + result.stderr).not.toContain('alice-psk');
  });

  it('a tunnel with --send prints what came back', async () => {
    const result = await probe(['--psk-env', 'SNELL_PSK', '--target', 'example.com:443', '--send', 'hello'], { SNELL_PSK: 'bob-psk' });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/✔ authenticated \(tunnel\)/);
    expect(result.stdout).toMatch(/received 5 bytes: hello/);
  });

  it('--target that gets an error reply exits 1 (as curl -f does), the reply printed', async () => {
    const strict = await startServe(['--users', usersFile, '--allow-target', '127.0.0.1:1']);
    const result = await runMain(['snell-probe', '--server', `127.0.0.1:${strict.port}`, '--psk', 'alice-psk', '--target', '127.0.0.1:1', '--send', 'x']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✘ authenticated \(error reply 111: dial tcp 127\.0\.0\.1:1: connect: connection refused\)/);
  });

  it('--users audits every user: one line each and a count; a user the server lacks fails the run', async () => {
    const audit = join(dir, 'audit.txt');
    writeFileSync(audit, 'alice:alice-psk\nbob:bob-psk\nmallory:guessed-psk\n');
    const result = await probe(['--users', audit, '--parallel', '3', '--ping']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✔ alice: authenticated \(pong\)/);
    expect(result.stdout).toMatch(/✘ mallory: rejected/);
    // The no-match delay is named when the close comes 35-250 ms after the first packet (a busy
    // machine can make it later; the note then says what it saw).
    const afterMs = Number(/mallory: rejected[^\n]*\n\s*\w+ after ([\d.]+) ms with nothing sent/.exec(result.stdout)?.[1]);
    expect(afterMs).toBeGreaterThanOrEqual(45);
    if (afterMs <= 250) expect(result.stdout).toMatch(/no-match delay/);
    expect(result.stdout).toMatch(/2 of 3 users authenticated/);
    const one = await probe(['--users', audit, '--user', 'bob', '--ping', '--json']);
    expect(JSON.parse(one.stdout)).toMatchObject({ outcome: 'authenticated', user: 'bob' });
  });

  it('--load with --bad-ratio: new connections at a rate; wrong PSKs show the 50 ms no-match delay as their own kind', async () => {
    const result = await probe(['--psk-env', 'P', '--ping', '--load', '--rate', '40', '--duration', '2s', '--bad-ratio', '0.25', '--json'], { P: 'alice-psk' });
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary.requests).toBe(80);
    expect(summary.errors).toBe(0);
    expect(Object.keys(summary.kinds)).toEqual(['good PSK', 'bad PSK']);
    expect(summary.kinds['bad PSK'].outcomes).toEqual({ 'rejected-bad-psk': summary.kinds['bad PSK'].requests });
    // The no-match delay is a lower bound, whatever the machine's speed.
    expect(summary.kinds['bad PSK'].latencyUs.p50).toBeGreaterThan(45_000);
  });

  it('a PSK no user has: "reset after N ms" with obfs off, "closed after N ms" with http (OpenSnell\'s closes), and "close" in JSON', async () => {
    const text = await probe(['--psk-env', 'P', '--ping'], { P: 'nobody-has-this' });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/reset after \d+\.\d ms with nothing sent/);
    const json = JSON.parse((await probe(['--psk-env', 'P', '--ping', '--json'], { P: 'nobody-has-this' })).stdout);
    expect(json.close.kind).toBe('reset');
    expect(json.close.afterMs).toBeGreaterThanOrEqual(45);
    const http = await startServe(['--users', usersFile, '--echo', '--obfs', 'http', '--quiet']);
    const fin = await runMain(['snell-probe', '--server', `127.0.0.1:${http.port}`, '--obfs', 'http', '--psk-env', 'P', '--ping', '--json'], { P: 'nobody-has-this' });
    expect(JSON.parse(fin.stdout)).toMatchObject({ outcome: 'rejected', close: { kind: 'fin' }, note: expect.stringMatching(/^closed after \d+\.\d ms/) });
    http.child.kill('SIGTERM');
  });

  it('--padding-style opensnell and random both authenticate', async () => {
    for (const style of ['opensnell', 'random']) {
      const result = await probe(['--psk-env', 'P', '--ping', '--padding-style', style, '--json'], { P: 'alice-psk' });
      expect(JSON.parse(result.stdout), style).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    }
  });

  it('bad input: one line, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--psk-env', 'SNELL_PSK', '--ping', '--padding-style', 'surge'], /--padding-style.*expected one of opensnell, random/],
      [['--psk-env', 'SNELL_PSK', '--ping', '--version', '3', '--padding-style', 'random'], /--padding-style: only v4\/v5 TCP first frames carry padding/],
      [['--psk-env', 'SNELL_PSK', '--ping', '--load', '--rate', '5', '--bad-ratio', '2'], /--bad-ratio: expected a share from 0 to 1, got "2"/],
      [['--ping'], /a PSK is required/],
      [['--psk-env', 'SNELL_PSK'], /choose one of --ping, --target HOST:PORT or --udp HOST:PORT/],
      [['--users', usersFile, '--user', 'nobody', '--ping'], /--user nobody: no such user in /],
      [['--psk-env', 'SNELL_PSK', '--target', 'no-port'], /--target: expected HOST:PORT, got "no-port"/],
      [['--psk-env', 'SNELL_PSK', '--ping', '--send-hex', 'zz'], /--send-hex/],
      [['--psk-env', 'SNELL_PSK', '--ping', '--quic'], /--quic: the envelope carries a target: give --target HOST:PORT/],
    ];
    for (const [args, message] of cases) {
      const result = await probe(args, { SNELL_PSK: 'x' });
      expect(result.code, args.join(' ')).toBe(2);
      expect(expectOneLineError(result)).toMatch(message);
    }
  });
});

describe('snell-probe against servers that are not Snell', () => {
  const serverThat = async (behaviour: (socket: net.Socket) => void): Promise<number> => {
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      behaviour(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    return (server.address() as net.AddressInfo).port;
  };
  const probeAt = (target: number, extra: string[] = []) => runMain(['snell-probe', '--server', `127.0.0.1:${target}`, '--psk-env', 'P', '--ping', '--json', '--timeout', '1500', ...extra], { P: 'any' });

  it('an HTTP server, random bytes back, silence, nothing listening', async () => {
    const web = http.createServer((_req, res) => res.end('hi'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    closers.push(() => web.close());
    const httpResult = await probeAt((web.address() as net.AddressInfo).port);
    expect(httpResult.code).toBe(1);
    expect(JSON.parse(httpResult.stdout)).toMatchObject({ outcome: 'rejected', note: expect.stringMatching(/does not decrypt with this PSK: not a Snell server/) });
    const random = await probeAt(await serverThat((s) => s.once('data', () => s.end(Buffer.alloc(200, 7)))));
    expect(JSON.parse(random.stdout).outcome).toBe('rejected');
    const silent = await probeAt(await serverThat(() => undefined));
    expect(JSON.parse(silent.stdout)).toMatchObject({ outcome: 'timeout', note: expect.stringMatching(/still open/) });
    const closedServer = net.createServer();
    await new Promise<void>((resolve) => closedServer.listen(0, '127.0.0.1', resolve));
    const closedPort = (closedServer.address() as net.AddressInfo).port;
    await new Promise((resolve) => closedServer.close(resolve));
    const refused = await probeAt(closedPort);
    expect(JSON.parse(refused.stdout)).toMatchObject({ outcome: 'connect-failed', note: 'connection refused (nothing listens there)' });
  });

  it('a reply that fails to decrypt mid-stream: authenticated, and said', async () => {
    // A server that answers the real reply of snell-serve, then garbage: proxy snell-serve and corrupt after the first reply.
    const corruptPort = await serverThat((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port });
      // The salt and the first frame (under 2,000 bytes) pass; everything after is corrupted.
      let passed = 0;
      upstream.on('data', (chunk: Buffer) => {
        const keep = Math.max(0, Math.min(chunk.length, 3000 - passed));
        passed += chunk.length;
        client.write(Buffer.concat([chunk.subarray(0, keep), Buffer.alloc(chunk.length - keep, 0xee)]));
      });
      client.on('data', (chunk: Buffer) => upstream.write(chunk));
      upstream.on('error', () => client.destroy());
    });
    const result = await runMain(['snell-probe', '--server', `127.0.0.1:${corruptPort}`, '--psk-env', 'P', '--target', 'e.example:1', '--send', 'x'.repeat(60_000), '--json'], { P: 'alice-psk' });
    const json = JSON.parse(result.stdout);
    expect(json.outcome).toBe('authenticated');
    expect(json.note).toMatch(/the stream failed to decrypt after the reply/);
  });
});

describe('snell-serve', () => {
  it('reloads the users file as a whole; a broken file keeps the last good users', async () => {
    writeFileSync(usersFile, 'alice:alice-psk\ncarol:carol-psk\n');
    let result;
    for (let i = 0; i < 40; i++) {
      result = await probe(['--psk-env', 'P', '--ping', '--json'], { P: 'carol-psk' });
      if (result.code === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(result!.code).toBe(0);
    writeFileSync(usersFile, 'alice:alice-psk\nthis line is broken\n');
    for (let i = 0; i < 40 && !/keeping the last good users/.test(serveStderr); i++) await new Promise((r) => setTimeout(r, 100));
    expect(serveStderr).toMatch(/not reloaded, keeping the last good users \(2\): .*users\.txt:2: expected name:psk/);
    expect((await probe(['--psk-env', 'P', '--ping'], { P: 'carol-psk' })).code).toBe(0);
  });

  it('logs one line per connection and prints per-user totals on exit (and --stats-json)', async () => {
    expect(serveStderr).toMatch(/127\.0\.0\.1:\d+ alice - pong in=0 out=1/);
    const exited = new Promise<string>((resolve) => {
      let out = '';
      serve.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      serve.on('close', () => resolve(out));
    });
    serve.kill('SIGTERM');
    const totals = await exited;
    expect(totals).toMatch(/connections \d+: \d+ authenticated, \d+ rejected/);
    expect(totals).toMatch(/ {2}alice: \d+ connections/);
    const stats = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8'));
    expect(stats.users.alice.connections).toBeGreaterThan(0);
  });

  it('--max-pending-auth 1 --auth-queue 2 against 10,000 users: junk past the bound is closed as busy and counted, a cached client still gets its PONG', async () => {
    const users10k = join(dir, 'users-10k.csv');
    const csv = readFileSync(fileURLToPath(new URL('../../fixtures/snell/users-10k.csv', import.meta.url)), 'utf8');
    writeFileSync(users10k, csv);
    const lastPsk = csv.trim().split('\n').at(-1)!.split(',')[1]!;
    const statsFile = join(dir, 'busy-stats.json');
    const { child, port: busyPort } = await startServe(['--users', users10k, '--echo', '--max-pending-auth', '1', '--auth-queue', '2', '--stats-json', statsFile]);
    let log = '';
    child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const ping = () => runMain(['snell-probe', '--server', `127.0.0.1:${busyPort}`, '--psk-env', 'P', '--ping', '--json', '--timeout', '20s'], { P: lastPsk });
    // The first connection scans all 10,000 users; from then on 127.0.0.1 is cached.
    expect(JSON.parse((await ping()).stdout)).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    // Bursts of junk, each of 30 at once, until one finds the single scan and both places taken (at most 10 bursts).
    let sent = 0;
    const junk = (): Promise<void> => new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: busyPort }, () => socket.write(Buffer.alloc(64, 0x5a)));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
    for (let burst = 0; burst < 10 && !/ - - busy /.test(log); burst++) {
      const during = Array.from({ length: 30 }, () => junk());
      sent += 30;
      // A client of the cached IP is tried at once, scans or no scans.
      if (burst === 0) expect(JSON.parse((await ping()).stdout)).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
      await Promise.all(during);
    }
    const busyLines = log.split('\n').filter((l) => / - - busy \(scans: \d+ running, \d+ waiting; --max-pending-auth 1, --auth-queue 2\)$/.test(l));
    const rejectedLines = log.split('\n').filter((l) => / - - rejected \(no user matches, \d+ trials\)$/.test(l));
    expect(busyLines.length).toBeGreaterThan(0);
    // Every junk connection is accounted for: closed as busy, or scanned and rejected.
    expect(busyLines.length + rejectedLines.length).toBe(sent);
    const exited = new Promise<string>((resolve) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', () => resolve(out));
    });
    child.kill('SIGTERM');
    const totals = await exited;
    expect(totals).toContain(`connections ${sent + 2}: 2 authenticated, ${rejectedLines.length} rejected, ${busyLines.length} busy`);
    expect(JSON.parse(readFileSync(statsFile, 'utf8'))).toMatchObject({ accepted: sent + 2, authenticated: 2, rejected: rejectedLines.length, busy: busyLines.length });
  }, 60_000);

  const openFiles = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
  it.skipIf(openFiles < 12_000)('10,000 idle connections: memory stays bounded and the idle timeout closes every one', async () => {
    const idleUsers = join(dir, 'idle-users.txt');
    writeFileSync(idleUsers, 'alice:alice-psk\n');
    const { child, port: idlePort } = await startServe(['--users', idleUsers, '--echo', '--quiet', '--idle-timeout', '3']);
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
    const before = rss();
    let closed = 0;
    const sockets: net.Socket[] = [];
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(Array.from({ length: 1000 }, () => new Promise<void>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port: idlePort }, () => resolve());
        socket.on('error', () => resolve());
        socket.on('close', () => closed++);
        sockets.push(socket);
      })));
    }
    const grown = rss() - before;
    expect(grown).toBeLessThan(400);
    for (let i = 0; i < 300 && closed < 10_000; i++) await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(10_000);
    child.kill('SIGKILL');
  }, 40_000);

  it('bad input: one line, exit 2', async () => {
    const goodUsers = join(dir, 'good-users.txt');
    writeFileSync(goodUsers, 'alice:alice-psk\n');
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    closers.push(() => busy.close());
    const busyPort = (busy.address() as net.AddressInfo).port;
    const broken = join(dir, 'broken.txt');
    writeFileSync(broken, 'ok:psk\nnot a user line\n');
    const cases: [string[], RegExp][] = [
      [['snell-serve'], /--listen HOST:PORT is required/],
      [['snell-serve', '--listen', '127.0.0.1:0'], /give either --users FILE \(multi-user\) or a PSK/],
      [['snell-serve', '--listen', '127.0.0.1:0', '--users', broken], /broken\.txt:2/],
      [['snell-serve', '--listen', '127.0.0.1:0', '--users', usersFile, '--allow-target', 'nope'], /--allow-target nope: expected HOST:PORT or a CIDR/],
      [['snell-serve', '--listen', '127.0.0.1:0', '--users', usersFile, '--psk', 'x'], /give either --users FILE \(multi-user\) or a PSK/],
      [['snell-serve', '--listen', 'nowhere'], /--listen: expected HOST:PORT \(e\.g\. 127\.0\.0\.1:8080 or \[::1\]:8080\), got "nowhere"/],
      [['snell-serve', '--listen', '127.0.0.1:0', '--users', usersFile, '--authorize-url', 'not a url'], /--authorize-url: expected an http:\/\/ or https:\/\/ URL, got "not a url"/],
      [['snell-serve', '--listen', `127.0.0.1:${busyPort}`, '--users', goodUsers], /cannot listen on 127\.0\.0\.1:\d+: address already in use/],
      [['snell-serve', '--listen', '127.0.0.1:0', '--psk', 'x', '--max-pending-auth', '4'], /--max-pending-auth applies to --users: a single PSK has no trial authentication to bound/],
      [['snell-serve', '--listen', '127.0.0.1:0', '--users', goodUsers, '--auth-queue', '-1'], /--auth-queue/],
    ];
    // In process: each case fails before it would serve.
    for (const [args, message] of cases) {
      const result = await runMain(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(expectOneLineError(result)).toMatch(message);
    }
  });
});
