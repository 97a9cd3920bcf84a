import { afterAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameReader } from '../../src/capnp/wire/codec.js';
import { encodeBootstrapReturn, encodeExceptionReturn, readRpcMessage, type RpcMessage } from '../../src/capnp/wire/rpc.js';
import { expectOneLineError, runCli, runMain } from './run.js';
import { startAuthServer, type AuthServer } from '../../src/capnp/server/server.js';
import { parseRules } from '../../src/capnp/server/rules.js';
import { decideByRules } from '../../src/capnp/server/rule-match.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-capnp-cli-'));
const servers: net.Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));

/** A Unix-socket peer that does `behaviour` with each connection. */
async function peer(name: string, behaviour: (socket: net.Socket) => void): Promise<string> {
  const path = join(dir, name);
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    behaviour(socket);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  servers.push(server);
  return path;
}

/** A peer that reads RPC messages and answers each through `answer`. */
function rpcPeer(name: string, answer: (message: RpcMessage, socket: net.Socket) => void): Promise<string> {
  return peer(name, (socket) => {
    const frames = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      for (const segments of frames.push(chunk)) answer(readRpcMessage(segments), socket);
    });
  });
}

const check = (socket: string, extra: string[] = []) => runMain(['capnp-check', '--socket', socket, '--json', '--timeout-ms', '1000', ...extra]);

describe('capnp-check on bad input and misbehaving peers', () => {
  it('no socket at the path: exit 1, Proksi\'s on_error outcome, the reason', async () => {
    const result = await check(join(dir, 'missing.sock'));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ decision: null, proksi: { outcome: 'blocked', status: 403 }, error: { kind: 'connect', message: expect.stringMatching(/no socket at/) } });
  });

  it('a path that is a regular file', async () => {
    writeFileSync(join(dir, 'regular'), 'not a socket');
    const result = await check(join(dir, 'regular'));
    expect(JSON.parse(result.stdout).error.message).toMatch(/not a listening socket|not a socket/);
  });

  // Root may open any socket: the check runs the CLI as nobody (setpriv), where nobody can read it.
  const BIN = fileURLToPath(new URL('../../bin/authkit.js', import.meta.url));
  const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  const nobodyCanRun = (() => {
    if (process.getuid?.() !== 0 || !existsSync('/usr/bin/setpriv')) return false;
    try {
      execFileSync('/usr/bin/setpriv', [...asNobody, process.execPath, BIN, '--help'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it.skipIf(!nobodyCanRun)('permission denied on the socket: exit 1, Proksi\'s on_error outcome, the reason', async () => {
    const path = await peer('private.sock', () => undefined);
    chmodSync(dir, 0o755);
    chmodSync(path, 0o600);
    const output = (() => {
      try {
        return execFileSync('/usr/bin/setpriv', [...asNobody, process.execPath, BIN, 'capnp-check', '--socket', path, '--json'], { encoding: 'utf8' });
      } catch (error) {
        expect((error as { status: number }).status).toBe(1);
        return (error as { stdout: string }).stdout;
      }
    })();
    expect(JSON.parse(output)).toMatchObject({ decision: null, proksi: { outcome: 'blocked', status: 403 }, error: { kind: 'connect', message: `permission denied on ${path}` } });
  });

  it('a peer that sends garbage', async () => {
    const path = await peer('garbage.sock', (socket) => socket.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const result = await check(path);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).error).toMatchObject({ kind: expect.stringMatching(/protocol|disconnected/) });
  });

  it('a peer whose frame announces 4 GiB', async () => {
    const path = await peer('huge.sock', (socket) => {
      const frame = Buffer.alloc(8);
      frame.writeUInt32LE(0, 0);
      frame.writeUInt32LE(0x20000000, 4);
      socket.write(frame);
    });
    const result = await check(path);
    expect(JSON.parse(result.stdout).error).toMatchObject({ kind: 'protocol', message: expect.stringMatching(/announces more than/) });
  });

  it('a peer that answers the bootstrap and then closes', async () => {
    const path = await rpcPeer('closes.sock', (message, socket) => {
      if (message.type === 'bootstrap') socket.end(encodeBootstrapReturn(message.questionId));
    });
    const result = await check(path);
    expect(JSON.parse(result.stdout).error).toMatchObject({ kind: 'disconnected' });
  });

  it('a bootstrap answered with an exception: the call fails at once, saying so', async () => {
    const path = await rpcPeer('boot-exception.sock', (message, socket) => {
      if (message.type === 'bootstrap') socket.write(encodeExceptionReturn(message.questionId, { type: 'failed', reason: 'no\u001b[31m service' }));
    });
    const result = await check(path);
    const json = JSON.parse(result.stdout);
    expect(json.error).toMatchObject({ kind: 'exception', message: expect.stringMatching(/the bootstrap failed/) });
    expect(result.stdout).not.toContain('\u001b[31m');
  });

  it('a Return for a question that is not ours: a protocol error, not a hang', async () => {
    const path = await rpcPeer('stray-return.sock', (message, socket) => {
      if (message.type === 'bootstrap') socket.write(encodeBootstrapReturn(message.questionId));
      if (message.type === 'call') socket.write(encodeExceptionReturn(message.questionId + 100, { type: 'failed', reason: 'stray' }));
    });
    const result = await check(path);
    expect(JSON.parse(result.stdout).error).toMatchObject({ kind: 'protocol', message: expect.stringMatching(/not ours/) });
  });

  it('a socket path longer than a Unix socket can hold: refused, not silently shortened', async () => {
    const result = await check(join(dir, 'a'.repeat(120)));
    expect(JSON.parse(result.stdout).error.message).toMatch(/holds at most 107 bytes/);
  });

  it('a peer that accepts and never answers: the timeout fires', async () => {
    const path = await peer('silent.sock', () => undefined);
    const result = await check(path, ['--timeout-ms', '300']);
    expect(JSON.parse(result.stdout).error).toMatchObject({ kind: 'timeout', message: 'no reply within 300 ms' });
  });

  it.each([
    ['--client-ip without a port', ['--socket', '/x', '--client-ip', '203.0.113.7'], /--client-ip: expected IP:PORT/],
    ['no --socket', [], /--socket PATH is required/],
    ['a bad --header', ['--socket', '/x', '--header', 'no colon'], /--header: expected 'Name: value'/],
    ['an unknown --only check', ['--socket', '/x', '--conformance', '--only', 'C99'], /C99/],
  ])('rejects %s with one line and exit 2', async (_what, args, message) => {
    const result = await runMain(['capnp-check', ...args]);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(message);
  });
});

describe('capnp-check is Proksi\'s middleware, header for header (in process, against capnp-serve\'s rules)', () => {
  const started: AuthServer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.close()));
  });
  const RULES = JSON.stringify({
    rules: [
      { match: { header: { name: 'x-echo', present: true } }, decision: { action: 'pass', upstreamValue: 'echo' } },
      { match: { host: 'app.example', header: { name: 'host', equals: 'app.example:8080' } }, decision: { action: 'pass', upstreamValue: 'host-header-seen' } },
      { match: { header: { name: 'authorization', equals: 'Bearer good' } }, decision: { action: 'pass', upstreamValue: 'user=alice' } },
    ],
  });
  /** capnp-serve's rules; a request with x-echo gets itself back as the upstreamValue (JSON). */
  const service = async (name: string): Promise<string> => {
    const rules = parseRules(RULES, 'rules');
    const server = await startAuthServer({
      socketPath: join(dir, name),
      decide: (request) => {
        const decision = decideByRules(rules, request);
        return decision.upstreamValue === 'echo' ? { ...decision, upstreamValue: JSON.stringify(request) } : decision;
      },
    });
    started.push(server);
    return server.path;
  };
  let socket: string;
  const check = async (extra: string[]) => {
    socket ??= await service('proksi-1b.sock');
    const result = await runMain(['capnp-check', '--socket', socket, '--json', ...extra]);
    expect(result.code).toBe(0);
    return { ...JSON.parse(result.stdout), stderr: result.stderr };
  };

  it('a block answer carries no Content-Length: only Date and Connection: close, as pingora adds them', async () => {
    const json = await check([]);
    expect(json.proksi).toEqual({ outcome: 'blocked', status: 401, headers: [['Date', '<date>'], ['Connection', 'close']], body: '' });
    const text = await runMain(['capnp-check', '--socket', socket]);
    expect(text.stdout).toContain('Proksi answers 401; response headers:\n  Date: <date>\n  Connection: close');
  });

  it('the upstream header replaces the client\'s first copy where it stands, and duplicates are grouped by name', async () => {
    const json = await check(['--header', 'X-A: 1', '--header', 'x-proksi-auth-context: forged', '--header', 'X-B: 2', '--header', 'x-a: 3', '--header', 'authorization: Bearer good']);
    expect(json.proksi.headers).toEqual([
      ['Host', 'example.com'], ['X-A', '1'], ['x-a', '3'], ['x-proksi-auth-context', 'user=alice'], ['X-B', '2'], ['authorization', 'Bearer <redacted>'],
    ]);
  });

  it('an invalid --upstream-header name is dropped, as Proksi drops it, with a warning', async () => {
    const json = await check(['--header', 'authorization: Bearer good', '--upstream-header', 'x auth']);
    expect(json.proksi).toMatchObject({ outcome: 'proxied', headers: [['Host', 'example.com'], ['authorization', 'Bearer <redacted>']] });
    expect(json.warnings).toEqual(['upstream_header "x auth" is not a valid header name: Proksi cannot set it and proxies the request without it']);
  });

  it('over HTTP/1.1 the Host header reaches the service and the upstream; --header Host and --no-host-header change it', async () => {
    const json = await check(['--host', 'app.example:8080']);
    expect(json.decision.upstreamValue).toBe('host-header-seen');
    expect(json.proksi.headers).toEqual([['Host', 'app.example:8080'], ['x-proksi-auth-context', 'host-header-seen']]);
    const echoed = JSON.parse((await check(['--host', 'ignored.example', '--header', 'x-echo: 1', '--header', 'Host: app.example:8080'])).decision.upstreamValue);
    expect(echoed).toMatchObject({ host: 'app.example', headers: [{ name: 'x-echo', value: '1' }, { name: 'host', value: 'app.example:8080' }] });
    const none = await check(['--no-host-header', '--header', 'x-echo: 1']);
    expect(JSON.parse(none.decision.upstreamValue)).toMatchObject({ host: '', headers: [{ name: 'x-echo', value: '1' }] });
    expect(none.stderr).toMatch(/note: no Host header/);
  });

  it('Host counts against --max-headers', async () => {
    const json = await check(['--max-headers', '1', '--header', 'x-echo: 1', '--header', 'authorization: Bearer good']);
    expect(json.decision.upstreamValue).toBe('');
    expect(json.proksi.outcome).toBe('blocked');
  });

  it('--http2: the host comes from the URI authority ([::1]:8080 gives [::1]), and no Host header is sent', async () => {
    const json = await check(['--http2', '--host', '[::1]:8080', '--header', 'x-echo: 1']);
    expect(JSON.parse(json.decision.upstreamValue)).toMatchObject({ host: '[::1]', headers: [{ name: 'x-echo', value: '1' }] });
    expect(json.stderr).toBe('');
  });

  it('the client address goes as Proksi prints the socket address: [2001:DB8:0::1]:443 is sent as [2001:db8::1]:443', async () => {
    const json = await check(['--client-ip', '[2001:DB8:0::1]:443', '--header', 'x-echo: 1']);
    expect(JSON.parse(json.decision.upstreamValue).clientIp).toBe('[2001:db8::1]:443');
  });
});

describe('capnp-check --conformance never passes by accident', () => {
  it('without a fixture: INCOMPLETE, exit 1, naming the fixture fields; --allow-skips: exit 0', async () => {
    const rules = parseRules(JSON.stringify({ rules: [] }), 'rules');
    const server = await startAuthServer({ socketPath: join(dir, 'gate.sock'), decide: (request) => decideByRules(rules, request) });
    try {
      const incomplete = await runMain(['capnp-check', '--socket', server.path, '--conformance']);
      expect(incomplete.code).toBe(1);
      expect(incomplete.stdout).toMatch(/INCOMPLETE {2}\S+: no MUST check failed, but 2 MUST checks did not run: C02, C03/);
      expect(incomplete.stdout).toMatch(/a --fixture with pass, block would run them/);
      const accepted = await runMain(['capnp-check', '--socket', server.path, '--conformance', '--allow-skips']);
      expect(accepted.code).toBe(0);
      expect(accepted.stdout).toMatch(/PASSED .*accepted by --allow-skips/);
    } finally {
      await server.close();
    }
  });

  it('a socket nobody listens on: one line before any check, exit 1', async () => {
    const result = await runMain(['capnp-check', '--socket', join(dir, 'nobody.sock'), '--conformance', '--allow-skips']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/authkit: cannot reach .*nobody\.sock: no socket at that path/);
  });
});

describe('capnp-check keeps secrets out of its output', () => {
  it('masks credential headers in the text and --json, unless --show-secrets', async () => {
    const rules = parseRules(JSON.stringify({ rules: [{ match: { header: { name: 'authorization', equals: 'Bearer s3cr3t-token' } }, decision: { action: 'pass', upstreamValue: 'u' } }] }), 'rules');
    const server = await startAuthServer({ socketPath: join(dir, 'secrets.sock'), decide: (request) => decideByRules(rules, request) });
    try {
      const args = ['capnp-check', '--socket', server.path, '--header', 'Authorization: Bearer s3cr3t-token', '--header', 'Cookie: sid=abc123', '--header', 'X-Api-Key: k3y'];
      for (const extra of [[], ['--json']]) {
        const result = await runMain([...args, ...extra]);
        expect(result.code).toBe(0);
        expect(result.stdout + result.stderr).not.toMatch(/s3cr3t-token|abc123|k3y/);
        expect(result.stdout).toContain('Bearer <redacted>');
      }
      const shown = await runMain([...args, '--json', '--show-secrets']);
      expect(JSON.parse(shown.stdout).proksi.headers).toContainEqual(['Authorization', 'Bearer s3cr3t-token']);
    } finally {
      await server.close();
    }
  });

  it('a bad --header is refused without quoting it', async () => {
    const result = await runMain(['capnp-check', '--socket', '/x', '--header', 'Bearer s3cr3t-token']);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain('s3cr3t');
  });
});
