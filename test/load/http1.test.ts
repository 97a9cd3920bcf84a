import http from 'node:http';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Http1Pool, parseReply, type Http1Outcome } from '../../src/load/http1.js';
import { goRequestBytes } from '../../src/xray/wire/go-request.js';
import { parseGoUrl } from '../../src/xray/wire/go-url.js';

/** A POST as Go writes it (the one request writer of the project). */
const post = (url: URL, body: string): Buffer => goRequestBytes({ method: 'POST', url: parseGoUrl(url.href), header: new Map(), body: Buffer.from(body) });

const reply = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('the load client\'s reply parser', () => {
  it('reads Content-Length, chunked and pipelined replies, and waits for incomplete ones', () => {
    const one = reply('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"user":{}}');
    const parsed = parseReply(one, 1 << 20);
    expect(parsed).toMatchObject({ reply: { status: 200, contentType: 'application/json' }, consumed: one.length, close: false });
    expect((parsed as { reply: { body: Buffer } }).reply.body.toString()).toBe('{"user":{}}');
    expect(parseReply(one.subarray(0, one.length - 1), 1 << 20)).toBe('incomplete');
    expect(parseReply(one.subarray(0, 20), 1 << 20)).toBe('incomplete');

    const chunked = reply('HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnope\r\n3;x=y\r\n!!!\r\n0\r\n\r\n');
    const second = reply('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
    const both = Buffer.concat([chunked, second]);
    const first = parseReply(both, 1 << 20) as { reply: { status: number; body: Buffer }; consumed: number };
    expect(first.reply.status).toBe(401);
    expect(first.reply.body.toString()).toBe('nope!!!');
    expect(first.consumed).toBe(chunked.length);
    expect(parseReply(both.subarray(first.consumed), 1 << 20)).toMatchObject({ reply: { status: 204 }, close: true });
    expect(parseReply(chunked.subarray(0, chunked.length - 2), 1 << 20)).toBe('incomplete');
  });

  it('skips interim 1xx replies to the final one', () => {
    const bytes = reply('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const interim = parseReply(bytes, 100) as { interim: boolean; consumed: number };
    expect(interim.interim).toBe(true);
    const early = parseReply(bytes.subarray(interim.consumed), 100) as { interim: boolean; consumed: number };
    expect(early.interim).toBe(true);
    expect(parseReply(bytes.subarray(interim.consumed + early.consumed), 100)).toMatchObject({ reply: { status: 200 } });
    expect(parseReply(reply('HTTP/1.1 101 Switching Protocols\r\n\r\n'), 100)).toBe('the backend switched protocols (101): not an HTTP/1.1 reply');
  });

  it('says why bytes are not a usable reply', () => {
    expect(parseReply(reply('SSH-2.0-OpenSSH_9.2\r\n\r\n'), 100)).toBe('the backend answered something that is not HTTP/1.x');
    expect(parseReply(reply('HTTP/1.1 200 OK\r\n\r\nhello'), 100)).toMatch(/^a reply without Content-Length or chunked framing/);
    expect(parseReply(reply('HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n'), 100)).toBe('a reply body of 5000 bytes (limit 100)');
    expect(parseReply(reply('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 100)).toBe('a chunked reply with a bad chunk size');
  });

});

describe('the load client against Node\'s http server', () => {
  let server: http.Server;
  let url: URL;
  let socketPath: string;
  let unixServer: http.Server;
  const connections = new Set<string>();

  beforeAll(async () => {
    const handler = (request: http.IncomingMessage, response: http.ServerResponse): void => {
      connections.add(`${request.socket.remotePort}`);
      let body = '';
      request.on('data', (c: Buffer) => (body += c.toString()));
      request.on('end', () => {
        if (request.url === '/hang') return;
        if (request.url === '/chunked') {
          response.write('{"a":');
          response.end('1}');
          return;
        }
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify({ echo: body.length }));
      });
    };
    server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/auth`);
    socketPath = join(mkdtempSync(join(tmpdir(), 'authkit-http1-')), 's.sock');
    unixServer = http.createServer(handler);
    await new Promise<void>((resolve) => unixServer.listen(socketPath, resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    unixServer.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await new Promise((resolve) => unixServer.close(resolve));
  });

  // A reply's body is a view of the connection's read buffer, valid during the callback: kept, it is copied.
  const kept = (outcome: Http1Outcome): Http1Outcome => ('reply' in outcome ? { reply: { ...outcome.reply, body: Buffer.from(outcome.reply.body) } } : outcome);
  const sendMany = (pool: Http1Pool, request: Buffer, count: number): Promise<Http1Outcome[]> =>
    Promise.all(Array.from({ length: count }, () => new Promise<Http1Outcome>((resolve) => pool.send(request, (outcome) => resolve(kept(outcome))))));

  it('keeps connections alive, pipelines, and reads every reply in order', async () => {
    connections.clear();
    const pool = new Http1Pool({ url, maxConnections: 2, pipelining: 4, timeoutMs: 5000 });
    await pool.open();
    const request = post(url, '1234567');
    const outcomes = await sendMany(pool, request, 8);
    const again = await sendMany(pool, request, 8);
    await pool.close();
    for (const outcome of [...outcomes, ...again]) {
      expect(outcome).toMatchObject({ reply: { status: 200, contentType: 'application/json' } });
      expect(JSON.parse((outcome as { reply: { body: Buffer } }).reply.body.toString())).toEqual({ echo: 7 });
    }
    expect(connections.size).toBe(2);
  });

  it('reads chunked replies, and works over a Unix socket', async () => {
    const pool = new Http1Pool({ url: new URL('http://backend/chunked'), unixSocket: socketPath, maxConnections: 1, pipelining: 1, timeoutMs: 5000 });
    await pool.open();
    const [outcome] = await sendMany(pool, post(new URL('http://backend/chunked'), ''), 1);
    await pool.close();
    expect((outcome as { reply: { body: Buffer } }).reply.body.toString()).toBe('{"a":1}');
  });

  it('times out a backend that never answers, and fails fast on one that is not there', async () => {
    const hang = new URL('/hang', url);
    const pool = new Http1Pool({ url: hang, maxConnections: 1, pipelining: 1, timeoutMs: 200 });
    await pool.open();
    const started = performance.now();
    const [outcome] = await sendMany(pool, post(hang, ''), 1);
    await pool.close();
    expect(outcome).toEqual({ failure: 'timeout', reason: 'no reply within 200 ms' });
    // An upper bound only to show it does not hang: far above the time it takes, so a busy machine cannot fail it.
    expect(performance.now() - started).toBeLessThan(20_000);

    const closed = new Http1Pool({ url: new URL('http://127.0.0.1:1/auth'), maxConnections: 1, pipelining: 1, timeoutMs: 0 });
    await expect(closed.open()).rejects.toThrow('cannot connect to 127.0.0.1:1: connection refused (nothing listens there)');
    await closed.close();
    const missing = new Http1Pool({ url, unixSocket: join(tmpdir(), 'authkit-no-such.sock'), maxConnections: 1, pipelining: 1, timeoutMs: 0 });
    await expect(missing.open()).rejects.toThrow(/no socket at that path$/);
    await missing.close();
  });

  it('a backend that answers garbage is a network error, not a reply', async () => {
    const garbage = net.createServer((socket) => socket.on('data', () => socket.write('\x00\x01garbage\r\n\r\n')));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    const target = new URL(`http://127.0.0.1:${(garbage.address() as net.AddressInfo).port}/`);
    const pool = new Http1Pool({ url: target, maxConnections: 1, pipelining: 1, timeoutMs: 1000 });
    await pool.open();
    const [outcome] = await sendMany(pool, post(target, ''), 1);
    await pool.close();
    await new Promise((resolve) => garbage.close(resolve));
    expect(outcome).toEqual({ failure: 'network-error', reason: 'the backend answered something that is not HTTP/1.x' });
  });
});

describe('the load client\'s timeouts', () => {
  it('a timeout is recorded within 10 ms of its deadline, not at the next 100 ms sweep; one timer, reset to the earliest deadline', async () => {
    const silent = net.createServer((socket) => socket.on('data', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = new URL(`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/auth`);
    const { vi } = await import('vitest');
    const pool = new Http1Pool({ url, maxConnections: 1, pipelining: 1, timeoutMs: 0 });
    try {
      await pool.open();
      // The timeout timer and the clock on a fake timeline; the socket itself is real.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      let outcome: Http1Outcome | undefined;
      pool.send(post(url, '{}'), (o) => (outcome = o), 100);
      await vi.advanceTimersByTimeAsync(99);
      expect(outcome).toBeUndefined();
      await vi.advanceTimersByTimeAsync(11);
      // The failure is reported as the socket closes: real I/O, a few turns of the event loop.
      for (let turn = 0; turn < 100 && outcome === undefined; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(outcome).toMatchObject({ failure: 'timeout' });
      // A later request with a shorter timeout moves the timer earlier.
      const again = new Http1Pool({ url, maxConnections: 2, pipelining: 1, timeoutMs: 0 });
      const outcomes: (Http1Outcome | undefined)[] = [undefined, undefined];
      again.send(post(url, '{}'), (o) => (outcomes[0] = o), 1000);
      again.send(post(url, '{}'), (o) => (outcomes[1] = o), 50);
      await vi.advanceTimersByTimeAsync(60);
      for (let turn = 0; turn < 100 && outcomes[1] === undefined; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(outcomes[1]).toMatchObject({ failure: 'timeout' });
      expect(outcomes[0]).toBeUndefined();
      await again.close();
    } finally {
      vi.useRealTimers();
      await pool.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
