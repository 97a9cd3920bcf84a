import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';
import { expectOneLineError, runCli, runMain } from './run.js';
import { closedPortUrl, httpServer, rawServer, type TestServer } from '../xray/servers.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-xray-cli-'));
const alice = '550e8400-e29b-41d4-a716-446655440000';
const disabled = 'e727d208-859c-41ff-bddc-91e22c3ae6bd';
const env = { XRAY_SECRET: 'cli-test-secret' };

/** Starts `authkit xray-backend` on a Unix socket and waits for its listening line. */
async function startBackend(): Promise<{ socket: string; child: ChildProcess }> {
  const socket = join(dir, `backend-${process.hrtime.bigint()}.sock`);
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'authkit.js'), 'xray-backend', '--unix-socket', socket, '--users', join(ROOT, 'fixtures', 'xray', 'users.json'), '--secret-env', 'XRAY_SECRET'], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('xray-backend did not start in 10 s')), 10_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { socket, child };
}

const backend = await startBackend();
const servers: TestServer[] = [];
afterAll(async () => {
  backend.child.kill('SIGINT');
  await Promise.all(servers.map((s) => s.close()));
});
const sim = (args: string[], extra: Record<string, string> = {}) =>
  runMain(['xray-sim', '--url', 'http://backend/auth', '--unix-socket', backend.socket, '--secret-env', 'XRAY_SECRET', ...args], { ...env, ...extra });

/** The same, in this process (faster than a spawned CLI). */
async function simInProcess(args: string[]) {
  process.env.XRAY_SECRET = env.XRAY_SECRET;
  return runMain(['xray-sim', '--url', 'http://backend/auth', '--unix-socket', backend.socket, '--secret-env', 'XRAY_SECRET', ...args]);
}

describe('xray-sim --show-secrets', () => {
  it('prints the credential and the secret only when asked', async () => {
    const masked = await simInProcess(['--credential', alice, '--json']);
    expect(masked.stdout).not.toContain(alice);
    expect(masked.stdout).not.toContain(env.XRAY_SECRET);
    const shown = await simInProcess(['--credential', alice, '--json', '--show-secrets']);
    expect(shown.stdout).toContain(alice);
    expect(JSON.parse(shown.stdout).request.headers.Authorization).toBe(`Bearer ${env.XRAY_SECRET}`);
  });
});

describe('a conformance gate never passes by accident', () => {
  it('MUST checks skipped for want of a fixture: INCOMPLETE, exit 1, naming the fixture fields; --allow-skips: exit 0', async () => {
    const incomplete = await simInProcess(['--conformance']);
    expect(incomplete.code).toBe(1);
    expect(incomplete.stdout).toMatch(/INCOMPLETE {2}xray-extauth: no MUST check failed, but \d+ MUST checks did not run: X01, X04/);
    expect(incomplete.stdout).toMatch(/a --fixture with allowed, denied, revoke would run them/);
    expect(incomplete.stdout).not.toMatch(/PASSED/);
    const accepted = await simInProcess(['--conformance', '--allow-skips', '--json']);
    expect(accepted.code).toBe(0);
    expect(JSON.parse(accepted.stdout)).toMatchObject({ passed: true, verdict: 'passed', summary: { mustFailed: 0 } });
  });

  it('a backend that cannot be reached: one line before any check, exit 1', async () => {
    const result = await runMain(['xray-sim', '--url', await closedPortUrl(), '--conformance', '--allow-skips']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^authkit: cannot reach http:\/\/127\.0\.0\.1:\d+\/auth: connection refused/m);
    expect(result.stderr).not.toMatch(/running X/);
  });
});

describe('authkit xray-sim against authkit xray-backend', () => {
  it('allows a known user: exit 0, the documented JSON, the credential and secret masked', async () => {
    const result = await sim(['--credential', alice, '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(Object.keys(json).slice(0, 7)).toEqual(['verdict', 'class', 'status', 'user', 'latencyMs', 'request', 'warnings']);
    expect(json).toMatchObject({ verdict: 'allow', class: 'allow', status: 200, user: { email: 'alice@example.com', level: 0 } });
    expect(result.stdout).not.toContain(alice);
    expect(result.stdout).not.toContain('cli-test-secret');
  });

  it('denies a disabled user: exit 1, policy-deny', async () => {
    const result = await sim(['--credential', disabled, '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ verdict: 'deny', class: 'policy-deny', status: 403 });
  });

  it('runs a session with a timeline and a summary', async () => {
    const result = await sim(['--credential', alice, '--session', '--connections', '2', '--heartbeat', '0.3', '--duration', '0.7', '--stagger', '0.1', '--ttl', '60']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/conn 1 +198\.51\.100\.10 +authorization 200 allow/);
    // Connection 2 hits the cache if connection 1's authorization was back before it started
    // (0.1 s later); on a busy machine it may not be, and it authorizes itself: both are Xray.
    expect(result.stdout).toMatch(/conn 2 +198\.51\.100\.10 +(cache-hit|authorization 200 allow)/);
    const counts = /2 of 2 connections admitted and never denied; authorization (\d), cache hits (\d), connect 2/.exec(result.stdout);
    expect(Number(counts?.[1]) + Number(counts?.[2])).toBe(2);
  });

  it('passes the conformance suite and writes a JUnit report', async () => {
    const junit = join(dir, 'report.xml');
    const result = await sim(['--conformance', '--fixture', join(ROOT, 'fixtures', 'xray', 'conformance.json'), '--only', 'X01,X03,X04,X06,X07', '--junit', junit]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/5 checks: 5 passed/);
    expect(readFileSync(junit, 'utf8')).toMatch(/<testsuite [^>]*tests="5"[^>]*failures="0"/);
  });

  it('lists the checks without a backend, and skips fixture checks without a fixture', async () => {
    const list = await runMain(['xray-sim', '--conformance', '--list']);
    expect(list.stdout).toMatch(/X01\s+MUST/);
    expect(list.stdout).not.toMatch(/H01/);
    const noFixture = await sim(['--conformance', '--only', 'X01,X03']);
    expect(noFixture.stdout).toMatch(/SKIP\s+X01/);
    expect(noFixture.stderr).toMatch(/no --fixture/);
  });
});

describe('xray-sim on bad input and misbehaving backends', () => {
  it('masks the credential, the secret and a URL token even when the backend echoes them back', async () => {
    const echo = await httpServer((request, res) => {
      res.writeHead(403, { 'content-type': 'application/json', 'x-echo': String(request.headers.authorization) });
      res.end(JSON.stringify({ error: `denied ${request.body} with ${request.headers.authorization}` }));
    });
    servers.push(echo);
    for (const json of [[], ['--json']]) {
      const result = await runMain(['xray-sim', '--url', `${echo.url}?token=URLTOKEN123`, '--credential', alice, '--secret-env', 'S', ...json], { S: 'echoed-secret-value' });
      expect(result.code).toBe(1);
      expect(result.stdout).not.toContain(alice);
      expect(result.stdout).not.toContain('echoed-secret-value');
      expect(result.stdout).not.toContain('URLTOKEN123');
    }
  });

  it('does not mangle the body for a short hysteria2 auth string', async () => {
    const result = await runMain(['xray-sim', '--url', await closedPortUrl(), '--dialect', 'hysteria2', '--credential', 'a', '--json']);
    const body = JSON.parse(JSON.parse(result.stdout).request.body);
    expect(Object.keys(body)).toEqual(['addr', 'auth', 'tx']);
    expect(body.auth).toBe('<1 bytes>');
  });

  it('connection refused: exit 1, network-error, one clear reason', async () => {
    const result = await runMain(['xray-sim', '--url', await closedPortUrl(), '--credential', alice, '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ class: 'network-error', reason: 'connection refused' });
  });

  it('an unreachable host name: exit 1, network-error', async () => {
    const result = await runMain(['xray-sim', '--url', 'http://authkit-no-such-host.invalid/auth', '--credential', alice, '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).class).toBe('network-error');
  });

  it('a backend that accepts and never answers: the timeout fires and says so', async () => {
    const hung = await rawServer(() => undefined);
    servers.push(hung);
    const result = await runMain(['xray-sim', '--url', hung.url, '--credential', alice, '--timeout', '1']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/DENY \(timeout\): no complete reply within 1 s/);
  });

  it('a socket that is not there: exit 1, no such socket', async () => {
    const result = await runMain(['xray-sim', '--url', 'http://x/auth', '--unix-socket', join(dir, 'missing.sock'), '--credential', alice, '--json']);
    expect(JSON.parse(result.stdout)).toMatchObject({ class: 'network-error', reason: 'no such socket' });
  });

  it.each([
    ['an invalid --credential', ['--url', 'http://127.0.0.1:1/', '--credential', 'x'.repeat(40)], /--credential: expected a UUID/],
    ['a missing --credential', ['--url', 'http://127.0.0.1:1/'], /--credential is required/],
    ['a missing --url', ['--credential', alice], /--url is required/],
    ['a URL that is not one', ['--url', 'not a url', '--credential', alice], /--url: not a URL/],
    ['a bad --header', ['--url', 'http://127.0.0.1:1/', '--credential', alice, '--header', 'nocolon'], /--header: expected 'Name: value'/],
    ['a header name with a space', ['--url', 'http://127.0.0.1:1/', '--credential', alice, '--header', 'Bad Name: x'], /"Bad Name" is not a valid header name/],
    ['a framing header', ['--url', 'http://127.0.0.1:1/', '--credential', alice, '--header', 'Content-Length: 5'], /Content-Length is set by the HTTP client/],
    ['an unknown dialect', ['--url', 'http://127.0.0.1:1/', '--credential', alice, '--dialect', 'nope'], /--dialect: unknown dialect "nope"/],
    ['a secret for hysteria2', ['--url', 'http://127.0.0.1:1/', '--credential', 'x', '--dialect', 'hysteria2', '--secret-env', 'HOME'], /sends no secret/],
    ['an unknown --only check', ['--url', 'http://127.0.0.1:1/', '--conformance', '--only', 'X99'], /X99/],
  ])('rejects %s with one line and exit 2', async (_what, args, message) => {
    const result = await runMain(['xray-sim', ...args]);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(message);
  });

  it('rejects a malformed fixture, naming the field of the entry', async () => {
    writeFileSync(join(dir, 'bad-fixture.json'), JSON.stringify({ allowed: [alice, { credential: 'not-a-uuid' }] }));
    const result = await runMain(['xray-sim', '--url', 'http://127.0.0.1:1/', '--conformance', '--fixture', join(dir, 'bad-fixture.json')]);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(/bad-fixture\.json: "allowed"\[1\]\.credential must be a UUID/);
  });
});

describe('xray-sim --timeout', () => {
  it('the help says 0 means none, that this is Xray\'s default, and why authkit defaults to 5 s', async () => {
    const help = (await runMain(['xray-sim', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/0 = none, which is Xray's default, but a hung backend would then hang this run, so authkit defaults to 5/);
  });

  it('--timeout 0 sets no timeout: a slow reply is waited for, with a note', async () => {
    let slow: TestServer | undefined;
    try {
      slow = await rawServer((socket) => socket.once('data', () => setTimeout(() => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{"user":{"email":"a"}}'), 1200)));
      const result = await runMain(['xray-sim', '--url', slow.url, '--credential', '550e8400-e29b-41d4-a716-446655440000', '--timeout', '0', '--json']);
      expect(JSON.parse(result.stdout)).toMatchObject({ class: 'allow' });
      expect(result.stderr).toMatch(/--timeout 0: no timeout/);
    } finally {
      await slow?.close();
    }
  });
});
