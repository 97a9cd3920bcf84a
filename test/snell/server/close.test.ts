/**
 * How snell-serve closes a connection no user matches, seen from a raw socket, against what
 * OpenSnell does (spec: header note and §9 step 7): the 50 ms delay holds even after the
 * client's FIN, and a close with client bytes still unread is a reset (obfs off and tls: Go
 * reads exactly what it needs; http: its buffered reader has taken the request whole, so FIN).
 * Only lower bounds on time: other work shares the CPU.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnellServer, type SnellServer, type SnellServerOptions } from '../../../src/snell/server/server.js';
import { probeSnell } from '../../../src/snell/client.js';
import { parseTargetPolicy } from '../../../src/snell/server/targets.js';
import { selectKdf, type KdfBackend } from '../../../src/snell/wire/kdf.js';
import { buildFirstPacket } from '../../../src/snell/wire/first-packet.js';
import { wrapObfs, type ObfsMode } from '../../../src/snell/wire/obfs.js';
import { snellServeCommand } from '../../../src/cli/snell-serve.js';

const users = [{ name: 'alice', psk: 'alice-psk' }, { name: 'bob', psk: 'bob-psk' }];
let kdf: KdfBackend;
const servers: SnellServer[] = [];

beforeAll(async () => {
  kdf = await selectKdf();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(options: Partial<SnellServerOptions> = {}): Promise<SnellServer> {
  const server = await startSnellServer({ host: '127.0.0.1', port: 0, users, obfs: 'off', udp: false, targets: parseTargetPolicy([], true), kdf, ...options });
  servers.push(server);
  return server;
}

/** A first frame of `size` Snell bytes (salt included) with a PSK no user has. */
async function strangerFrame(size: number): Promise<Uint8Array> {
  const request = { command: 'ping' as const, clientId: new Uint8Array(0) };
  const bare = await buildFirstPacket({ psk: 'nobody-has-this', kdf, request, padding: 0 });
  return (await buildFirstPacket({ psk: 'nobody-has-this', kdf, request, padding: size - bare.wire.length })).wire;
}

interface Close {
  kind: 'reset' | 'fin';
  afterMs: number;
}

/** Sends `bytes` (then a FIN when `halfClose`) on a raw socket and reports how the server closed. */
async function sendAndWatch(port: number, bytes: Uint8Array, halfClose: boolean): Promise<Close> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => socket.once('connect', resolve));
  let kind: Close['kind'] = 'fin';
  socket.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ECONNRESET') kind = 'reset';
  });
  const sent = performance.now();
  if (halfClose) socket.end(bytes);
  else socket.write(bytes);
  const closedAt = await new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  return { kind, afterMs: closedAt - sent };
}

describe('snell-serve closes a connection no user matches as OpenSnell does', () => {
  it('salt and header then FIN: the 50 ms no-match delay still runs, and the close is a FIN', async () => {
    const server = await serve();
    const close = await sendAndWatch(server.address.port, (await strangerFrame(600)).subarray(0, 39), true);
    expect(close.afterMs).toBeGreaterThanOrEqual(45);
    expect(close.kind).toBe('fin');
  });

  it('fewer than 39 bytes then FIN: closed at once (no delay before the header is whole)', async () => {
    const server = await serve();
    const close = await sendAndWatch(server.address.port, (await strangerFrame(600)).subarray(0, 20), true);
    expect(close.kind).toBe('fin');
    expect(server.stats().rejected).toBe(1);
  });

  const cases: [ObfsMode, Close['kind']][] = [['off', 'reset'], ['tls', 'reset'], ['http', 'fin']];
  for (const [obfs, kind] of cases) {
    it(`a real-size first frame (600 bytes), obfs ${obfs}: ${kind === 'reset' ? 'a reset' : 'a FIN'} after the delay`, async () => {
      const server = await serve({ obfs });
      const close = await sendAndWatch(server.address.port, wrapObfs(await strangerFrame(600), obfs), false);
      expect(close.afterMs).toBeGreaterThanOrEqual(45);
      expect(close.kind).toBe(kind);
    });
  }

  it('the same 600 bytes then FIN: still the delay, still a reset', async () => {
    const server = await serve();
    const close = await sendAndWatch(server.address.port, await strangerFrame(600), true);
    expect(close.afterMs).toBeGreaterThanOrEqual(45);
    expect(close.kind).toBe('reset');
  });

  it('snell-probe names the close: "reset after N ms" (obfs off) and "closed after N ms" (http), and says it in JSON', async () => {
    for (const [obfs, kind, words] of [['off', 'reset', /^reset after \d+(\.\d)? ms/], ['http', 'fin', /^closed after \d+(\.\d)? ms/]] as const) {
      const server = await serve({ obfs });
      const result = await probeSnell({ host: '127.0.0.1', port: server.address.port, psk: 'nobody-has-this', version: 4, obfs, action: { kind: 'ping' }, timeoutMs: 3000, kdf });
      expect(result.outcome).toBe('rejected');
      expect(result.close?.kind).toBe(kind);
      expect(result.close!.afterMs).toBeGreaterThanOrEqual(45);
      // (Not the note's reading of the timing: that has an upper bound a busy machine can pass.)
      expect(result.note).toMatch(words);
    }
  });

  it('an authenticated client that half-closes after PING still gets its PONG', async () => {
    const server = await serve();
    const frame = (await buildFirstPacket({ psk: 'bob-psk', kdf, request: { command: 'ping', clientId: new Uint8Array(0) } })).wire;
    const socket = net.connect({ host: '127.0.0.1', port: server.address.port });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.end(frame);
    await new Promise((resolve) => socket.once('close', resolve));
    // A reply stream: its salt (16) and one frame (header 23, payload 1 + tag 16, padding).
    expect(Buffer.concat(received).length).toBeGreaterThanOrEqual(16 + 23 + 17);
    expect(server.stats().users.bob?.connections).toBe(1);
  });
});

describe('the refused target\'s error text follows OpenSnell\'s ipv6 setting', () => {
  it('default "dial tcp …"; --no-ipv6 "dial tcp4 …" (an IPv6 target is never dialled)', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const targets = parseTargetPolicy([`127.0.0.1:${port}`, `[::1]:${port}`], false);
    const connect = (server: SnellServer, host: string) => probeSnell({
      host: '127.0.0.1', port: server.address.port, psk: 'alice-psk', version: 4, obfs: 'off', timeoutMs: 3000, kdf,
      action: { kind: 'connect', host, port, command: 'connect' },
    });
    const both = await serve({ targets });
    expect((await connect(both, '127.0.0.1')).reply).toEqual({ kind: 'error', code: 111, message: `dial tcp 127.0.0.1:${port}: connect: connection refused` });
    const v4 = await serve({ targets, ipv6: false });
    expect((await connect(v4, '127.0.0.1')).reply).toEqual({ kind: 'error', code: 111, message: `dial tcp4 127.0.0.1:${port}: connect: connection refused` });
    // Go's resolver turns an IPv6 literal down before any dial when the network is tcp4.
    expect((await connect(v4, '::1')).reply).toEqual({ kind: 'error', code: 0, message: 'dial tcp4: address ::1: no suitable address found' });
  });

  it('snell-serve --no-ipv6 sets it (the CLI, in process)', async () => {
    const stop = new AbortController();
    const listening = new Promise<number>((resolve) => {
      void snellServeCommand({ signal: stop.signal, onListening: resolve }).parseAsync(['--listen', '127.0.0.1:0', '--psk', 'alice-psk', '--no-ipv6', '--allow-target', '127.0.0.1:1', '--quiet'], { from: 'user' });
    });
    const port = await listening;
    const result = await probeSnell({ host: '127.0.0.1', port, psk: 'alice-psk', version: 4, obfs: 'off', timeoutMs: 3000, kdf, action: { kind: 'connect', host: '127.0.0.1', port: 1, command: 'connect' } });
    stop.abort();
    expect(result.reply).toMatchObject({ kind: 'error', message: 'dial tcp4 127.0.0.1:1: connect: connection refused' });
  });
});
