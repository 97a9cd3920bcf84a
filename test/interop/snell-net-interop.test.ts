/**
 * snell-serve and snell-probe against an independent Snell client and server on the network
 * (test/interop/snell_net_peer.py, on Python's libargon2 and OpenSSL bindings): PING, a wrong
 * PSK (closed after ~50 ms), echo tunnels, a refused target (errno 111), CONNECT-v2 reuse of
 * one stream for two requests, UDP-over-TCP, http obfs, more than 16 users.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnellServer, type SnellServer } from '../../src/snell/server/server.js';
import { parseTargetPolicy } from '../../src/snell/server/targets.js';
import { probeSnell } from '../../src/snell/client.js';
import { type ProbeOptions } from '../../src/snell/client/probe-types.js';
import { selectKdf } from '../../src/snell/wire/kdf.js';
import { utf8 } from '../../src/shared/bytes.js';
import { peerAvailable, PYTHON, SnellPeer } from './peer.js';

const PEER = fileURLToPath(new URL('./snell_net_peer.py', import.meta.url));
const available = peerAvailable();
if (!available && process.env.CI) throw new Error('CI must install python3-argon2 and python3-cryptography for the interop peer');
const users = Array.from({ length: 20 }, (_, i) => ({ name: `user-${i}`, psk: `interop-psk-${i}` }));

interface PeerResult {
  outcome: string;
  reply: { kind: string; code?: number; message?: string } | null;
  received: string;
  closeMs: number | null;
}

function pythonClient(port: number, psk: string, ...args: string[]): Promise<PeerResult> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [PEER, 'client', '127.0.0.1', String(port), psk, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as PeerResult);
    });
  });
}

const hex = (text: string): string => Buffer.from(text).toString('hex');

describe.skipIf(!available)('the Python client against snell-serve', () => {
  const servers: SnellServer[] = [];
  let closedPort: number;
  beforeAll(async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
  });
  afterAll(async () => Promise.all(servers.map((s) => s.close())));
  const serve = async (obfs: 'off' | 'http' | 'tls' = 'off'): Promise<number> => {
    const server = await startSnellServer({ host: '127.0.0.1', port: 0, users, obfs, udp: true, quic: true, targets: parseTargetPolicy([`127.0.0.1:${closedPort}`], true) });
    servers.push(server);
    return server.address.port;
  };

  it('PING, a wrong PSK closed after the no-match delay, an echo tunnel, over 16 users', async () => {
    const port = await serve();
    expect(await pythonClient(port, 'interop-psk-19', 'ping')).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    const wrong = await pythonClient(port, 'not-a-user', 'ping');
    expect(wrong.outcome).toBe('rejected');
    expect(wrong.closeMs).toBeGreaterThanOrEqual(45);
    const echo = await pythonClient(port, 'interop-psk-7', 'connect', 'example.com', '443', hex('x'.repeat(40_000)));
    expect(Buffer.from(echo.received, 'hex').toString()).toBe('x'.repeat(40_000));
  });

  it('a refused target gets errno 111; CONNECT-v2 reuses the stream; UDP-over-TCP; http obfs', async () => {
    const port = await serve();
    const refused = await pythonClient(port, 'interop-psk-1', 'connect', '127.0.0.1', String(closedPort), '');
    expect(refused.reply).toEqual({ kind: 'error', code: 111, message: `dial tcp 127.0.0.1:${closedPort}: connect: connection refused` });
    const twice = await pythonClient(port, 'interop-psk-2', 'connect-twice', 'example.com', '443');
    expect(Buffer.from(twice.received, 'hex').toString()).toBe('first|second');
    const udp = await pythonClient(port, 'interop-psk-3', 'udp', '192.0.2.53', '53', hex('a datagram'));
    expect(Buffer.from(udp.received, 'hex').toString()).toBe('a datagram');
    const obfsPort = await serve('http');
    expect(await pythonClient(obfsPort, 'interop-psk-4', 'ping', '--obfs', 'http')).toMatchObject({ reply: { kind: 'pong' } });
    const tlsPort = await serve('tls');
    expect(await pythonClient(tlsPort, 'interop-psk-5', 'ping', '--obfs', 'tls')).toMatchObject({ reply: { kind: 'pong' } });
    const tlsEcho = await pythonClient(tlsPort, 'interop-psk-6', 'connect', 'example.com', '443', hex('z'.repeat(20_000)), '--obfs', 'tls');
    expect(Buffer.from(tlsEcho.received, 'hex').toString()).toBe('z'.repeat(20_000));
    const tlsTwice = await pythonClient(tlsPort, 'interop-psk-8', 'connect-twice', 'example.com', '443', '--obfs', 'tls');
    expect(Buffer.from(tlsTwice.received, 'hex').toString()).toBe('first|second');
  });

  it('a v5 QUIC envelope from the Python client opens a flow (echoed); a wrong PSK gets nothing back', async () => {
    const port = await serve();
    const inner = Buffer.concat([Buffer.from([0xc3, 0, 0, 0, 1]), Buffer.alloc(1195, 7)]);
    const flow = await pythonClient(port, 'interop-psk-11', 'quic', 'www.example.com', '443', inner.toString('hex'));
    expect(flow).toMatchObject({ outcome: 'authenticated', reply: { kind: 'quic' } });
    expect(flow.received).toBe(inner.toString('hex'));
    expect((await pythonClient(port, 'nobody', 'quic', 'www.example.com', '443', inner.toString('hex'))).outcome).toBe('timeout');
  });
});

describe.skipIf(!available)('snell-probe against the Python server', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill()));
  const start = async (obfs: 'off' | 'http' | 'tls' = 'off'): Promise<number> => {
    const dir = mkdtempSync(join(tmpdir(), 'authkit-snell-net-'));
    writeFileSync(join(dir, 'users.txt'), users.map((u) => `${u.name}:${u.psk}`).join('\n'));
    const child = spawn(PYTHON, [PEER, 'server', join(dir, 'users.txt'), '--obfs', obfs], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return new Promise((resolve) => child.stdout!.once('data', (c: Buffer) => resolve(Number(/listening (\d+)/.exec(c.toString())![1]))));
  };
  const probe = async (port: number, options: Partial<ProbeOptions>) =>
    probeSnell({ host: '127.0.0.1', port, psk: 'interop-psk-18', version: 4, obfs: 'off', action: { kind: 'ping' }, timeoutMs: 5000, kdf: await selectKdf(), ...options });

  it('PING, a wrong PSK (the no-match delay), echo, a refused target, http obfs', async () => {
    const port = await start();
    expect(await probe(port, {})).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    const wrong = await probe(port, { psk: 'nobody' });
    expect(wrong.outcome).toBe('rejected');
    // Named the no-match delay when the close came 35-250 ms after the first packet, as it does
    // unless the machine is too busy to keep that window.
    expect(wrong.close!.afterMs).toBeGreaterThanOrEqual(45);
    if (wrong.close!.afterMs <= 250) expect(wrong.note).toMatch(/no-match delay/);
    const echo = await probe(port, { action: { kind: 'connect', host: 'example.com', port: 443, command: 'connect-v2' }, send: utf8.encode('y'.repeat(30_000)) });
    expect(Buffer.from(echo.received!).toString()).toBe('y'.repeat(30_000));
    const refused = await probe(port, { action: { kind: 'connect', host: '127.0.0.1', port: 1, command: 'connect' } });
    expect(refused.reply).toEqual({ kind: 'error', code: 111, message: 'dial tcp 127.0.0.1:1: connect: connection refused' });
    const udp = await probe(port, { action: { kind: 'udp', host: '127.0.0.1', port: 53 }, send: utf8.encode('q') });
    expect(Buffer.from(udp.received!).toString()).toBe('q');
    const obfsPort = await start('http');
    expect(await probe(obfsPort, { obfs: 'http' })).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    const tlsPort = await start('tls');
    expect(await probe(tlsPort, { obfs: 'tls' })).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    const tlsEcho = await probe(tlsPort, { obfs: 'tls', action: { kind: 'connect', host: 'example.com', port: 443, command: 'connect-v2' }, send: utf8.encode('t'.repeat(25_000)) });
    expect(Buffer.from(tlsEcho.received!).toString()).toBe('t'.repeat(25_000));
  });
});

describe.skipIf(!available)('snell-probe speaking legacy v1-v3', () => {
  it('sends chunks the independent codec opens: ChaCha20 for v1, AES-128-GCM for v2 and v3, the request and data inside', async () => {
    const peer = new SnellPeer();
    try {
      for (const version of [1, 2, 3] as const) {
        const received: Buffer[] = [];
        const server = net.createServer((socket) => {
          socket.on('data', (chunk: Buffer) => received.push(chunk));
          setTimeout(() => socket.destroy(), 300);
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        await probeSnell({
          host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, psk: 'legacy-psk', version, obfs: 'off',
          action: { kind: 'connect', host: 'example.com', port: 443, command: 'connect' }, send: utf8.encode('early'), timeoutMs: 2000, kdf: await selectKdf(),
        });
        await new Promise((resolve) => server.close(resolve));
        const decoded = await peer.call({ op: 'decode_legacy', psk: 'legacy-psk', wire: Buffer.concat(received).toString('hex') });
        expect(decoded.cipher, `v${version}`).toBe(version === 1 ? 'chacha20-poly1305' : 'aes-128-gcm');
        const request = Buffer.from([0x01, 0x01, 0x00, 11, ...Buffer.from('example.com'), 0x01, 0xbb, ...Buffer.from('early')]);
        expect(decoded.payload, `v${version}`).toBe(request.toString('hex'));
      }
    } finally {
      peer.close();
    }
  });
});

