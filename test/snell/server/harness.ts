/**
 * What the snell-serve tests share: servers over 20 users that close after the file's tests,
 * a probe as snell-probe makes it, a TCP echo, a closed port and a raw client. Each test file
 * calls useSnellServers() once, at its top.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { startSnellServer, type SnellServer, type SnellServerOptions } from '../../../src/snell/server/server.js';
import { probeSnell } from '../../../src/snell/client.js';
import { type ProbeOptions } from '../../../src/snell/client/probe-types.js';
import { parseTargetPolicy } from '../../../src/snell/server/targets.js';
import { selectKdf, deriveSnellKey, type KdfBackend } from '../../../src/snell/wire/kdf.js';
import { AeadDirection, aeadKey } from '../../../src/snell/wire/aead.js';
import { SnellStreamReader, SnellStreamWriter } from '../../../src/snell/wire/stream.js';
import { utf8 } from '../../../src/shared/bytes.js';

export const users = Array.from({ length: 20 }, (_, i) => ({ name: `user-${i}`, psk: `psk-of-user-${i}` }));
/** Set before the tests run (useSnellServers). */
export let kdf: KdfBackend;
const servers: SnellServer[] = [];
/** What a test opened besides servers, closed after the file's tests. */
export const closers: (() => void)[] = [];

export function useSnellServers(): void {
  beforeAll(async () => {
    kdf = await selectKdf();
  });
  afterAll(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    closers.splice(0).forEach((close) => close());
  });
}

export async function serve(options: Partial<SnellServerOptions> = {}): Promise<SnellServer> {
  const server = await startSnellServer({ host: '127.0.0.1', port: 0, users, obfs: 'off', udp: false, targets: parseTargetPolicy([], true), kdf, ...options });
  servers.push(server);
  return server;
}

export function probe(server: SnellServer, options: Partial<ProbeOptions>) {
  return probeSnell({ host: '127.0.0.1', port: server.address.port, psk: 'psk-of-user-17', version: 4, obfs: 'off', action: { kind: 'ping' }, timeoutMs: 3000, kdf, ...options });
}

/** A TCP echo server, and a closed port. */
export async function echoServer(): Promise<number> {
  const server = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A raw client: the first packet and then frames on one stream, for reuse and bad input. */
export async function rawClient(server: SnellServer, psk = 'psk-of-user-2') {
  const socket = net.connect({ host: '127.0.0.1', port: server.address.port });
  await new Promise((resolve) => socket.once('connect', resolve));
  const salt = randomBytes(16);
  const writer = new SnellStreamWriter(new AeadDirection('aes-128-gcm', aeadKey(await deriveSnellKey(kdf, utf8.encode(psk), salt), 'aes-128-gcm')), salt);
  const payloads: Uint8Array[] = [];
  let reader: SnellStreamReader | undefined;
  let pending = Buffer.alloc(0);
  let chain = Promise.resolve();
  socket.on('data', (chunk: Buffer) => {
    chain = chain.then(async () => {
      if (!reader) {
        pending = Buffer.concat([pending, chunk]);
        if (pending.length < 16) return;
        reader = new SnellStreamReader(new AeadDirection('aes-128-gcm', aeadKey(await deriveSnellKey(kdf, utf8.encode(psk), pending.subarray(0, 16)), 'aes-128-gcm')));
        chunk = pending.subarray(16);
      }
      payloads.push(...reader.push(chunk));
    });
  });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  const waitFor = async (count: number): Promise<Uint8Array[]> => {
    for (let i = 0; i < 200 && payloads.length < count; i++) await new Promise((r) => setTimeout(r, 10));
    return payloads.slice(0, count);
  };
  return { socket, writer, payloads, waitFor, closed };
}
