import { afterAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameReader } from '../../src/capnp/codec.js';
import { encodeBootstrapReturn, encodeExceptionReturn, readRpcMessage, type RpcMessage } from '../../src/capnp/rpc.js';
import { expectOneLineError, runCli } from './run.js';

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

const check = (socket: string, extra: string[] = []) => runCli(['capnp-check', '--socket', socket, '--json', '--timeout-ms', '1000', ...extra]);

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
    const result = await runCli(['capnp-check', ...args]);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(message);
  });
});
