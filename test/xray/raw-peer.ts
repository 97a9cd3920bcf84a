/**
 * A backend on raw sockets (plain or TLS) that records every request's exact bytes and answers
 * each with bytes the test writes by hand, so a test sees what went on the wire and controls
 * every byte of the reply.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

export interface RawRequest {
  /** Request line and headers, CRLFs included, up to and including the blank line. */
  head: string;
  body: Buffer;
  /** The request line's target. */
  path: string;
  method: string;
  /** Which connection (0, 1, ...) carried it. */
  connection: number;
}

/** What to send back: bytes (then keep the connection), or bytes and close, or nothing at all. */
export type RawAnswer = string | Buffer | { send: string | Buffer; close?: boolean; reset?: boolean } | undefined;

export interface RawPeer {
  url: string;
  port: number;
  requests: RawRequest[];
  close(): Promise<void>;
}

export async function rawPeer(answer: (request: RawRequest, index: number) => RawAnswer, options: { tls?: TlsFiles; host?: string } = {}): Promise<RawPeer> {
  const requests: RawRequest[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const onSocket = (socket: net.Socket): void => {
    const connection = connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.toString('latin1', 0, end + 4);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const [method = '', target = ''] = head.split(' ', 2);
        const request = { head, body: buffer.subarray(end + 4, end + 4 + length), path: target, method, connection };
        buffer = buffer.subarray(end + 4 + length);
        requests.push(request);
        const reply = answer(request, requests.length - 1);
        if (reply === undefined) continue;
        if (typeof reply === 'string' || Buffer.isBuffer(reply)) socket.write(reply);
        else if (reply.reset) socket.resetAndDestroy();
        else if (reply.close) socket.end(reply.send);
        else socket.write(reply.send);
      }
    });
  };
  const host = options.host ?? '127.0.0.1';
  const server = options.tls
    ? tls.createServer({ key: options.tls.key, cert: options.tls.cert, ALPNProtocols: ['http/1.1'] }, onSocket)
    : net.createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${port}/auth`,
    port,
    requests,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** An HTTP/1.1 reply with a Content-Length. */
export function reply(status: number, body = '', headers: Record<string, string> = {}): string {
  const lines = [`HTTP/1.1 ${status} X`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${Buffer.byteLength(body)}`];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

export const ALLOW = reply(200, '{"user":{"email":"a@x","level":0}}', { 'Content-Type': 'application/json' });
export const HYSTERIA_OK = reply(200, '{"ok":true,"id":"u1"}', { 'Content-Type': 'application/json' });

export interface TlsFiles {
  key: Buffer;
  cert: Buffer;
}

/** A self-signed certificate for 127.0.0.1 and localhost, made by openssl for this test run. */
export function selfSignedCertificate(): TlsFiles {
  const dir = mkdtempSync(path.join(tmpdir(), 'authkit-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
