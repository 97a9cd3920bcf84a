import { afterEach, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { sendEvent, type EventRequest } from '../../src/xray/client.js';
import { wiki } from '../../src/xray/wire/dialects/wiki.js';
import { src } from '../../src/xray/wire/dialects/src.js';
import { closedPortUrl, httpServer, rawServer, type TestServer } from './servers.js';

const facts = {
  credential: '550e8400-e29b-41d4-a716-446655440000', connectionId: 'a3f1c2d4-9b8e-4f1a-b2c3-d4e5f6a7b8c9', protocol: 'vless',
  sourceIp: '2001:db8::1', sourcePort: 40000, localIp: '10.0.0.1', localPort: 443,
};
const event = (url: string, extra: Partial<EventRequest> = {}): EventRequest => ({ url, dialect: wiki, type: 'authorization', facts, timeoutSeconds: 2, ...extra });
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('the request, as Xray\'s Go client sends it', () => {
  it('POSTs compact JSON with Go\'s headers and a fixed Content-Length', async () => {
    server = await httpServer((_r, res) => res.end());
    await sendEvent(event(server.url, { dialect: src, secret: 's3cret', headers: [['X-Extra', 'v']] }));
    const [request] = server.requests;
    expect(request).toMatchObject({ method: 'POST', url: '/auth' });
    expect(request!.headers).toMatchObject({
      'user-agent': 'Go-http-client/1.1', 'content-type': 'application/json', 'accept-encoding': 'gzip',
      authorization: 'Bearer s3cret', 'content-length': String(Buffer.byteLength(request!.body)), 'x-extra': 'v',
    });
    expect(request!.headers['transfer-encoding']).toBeUndefined();
    expect(JSON.parse(request!.body)).toMatchObject({ type: 'authorization', ip: '[2001:db8::1]', credential: facts.credential });
  });

  it('never retries', async () => {
    server = await httpServer((_r, res) => {
      res.statusCode = 503;
      res.end();
    });
    expect((await sendEvent(event(server.url))).verdict.class).toBe('upstream-error');
    expect(server.requests).toHaveLength(1);
  });
});

describe('every verdict class, from servers that misbehave on purpose', () => {
  it('allow: decodes a gzip reply', async () => {
    server = await httpServer((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync('{"user":{"email":"a@x","level":1}}'));
    });
    expect((await sendEvent(event(server.url))).verdict).toMatchObject({ verdict: 'allow', user: { email: 'a@x', level: 1 } });
  });

  it('policy-deny: 401 and 403', async () => {
    server = await httpServer((_r, res) => {
      res.statusCode = 403;
      res.end('{"error":"disabled"}');
    });
    expect((await sendEvent(event(server.url))).verdict).toMatchObject({ verdict: 'deny', class: 'policy-deny' });
  });

  it('protocol-error: a redirect followed, as Go follows it, to a 204', async () => {
    server = await httpServer((r, res) => {
      res.writeHead(r.url === '/auth' ? 302 : 204, { location: '/elsewhere' });
      res.end();
    });
    const exchange = await sendEvent(event(server.url));
    expect(exchange.verdict).toMatchObject({ class: 'protocol-error' });
    expect(exchange.verdict.reason).toMatch(/^204/);
    expect(exchange.redirects).toEqual([{ status: 302, location: '/elsewhere' }]);
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /auth', 'GET /elsewhere']);
  });

  it('timeout: a backend that accepts and never answers, bounded by the timeout', async () => {
    server = await rawServer(() => undefined);
    const exchange = await sendEvent(event(server.url, { timeoutSeconds: 1 }));
    expect(exchange.verdict).toMatchObject({ verdict: 'deny', class: 'timeout', reason: 'no complete reply within 1 s' });
    expect(exchange.latencyMs).toBeGreaterThanOrEqual(900);
    // An upper bound only to show it does not hang: far above the time it takes, so a busy machine cannot fail it.
    expect(exchange.latencyMs).toBeLessThan(20_000);
  });

  it('timeout: headers arrive but the body never ends', async () => {
    server = await rawServer((socket) => socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"user":')));
    expect((await sendEvent(event(server.url, { timeoutSeconds: 1 }))).verdict.class).toBe('timeout');
  });

  it('network-error: connection refused', async () => {
    const exchange = await sendEvent(event(await closedPortUrl()));
    expect(exchange.verdict).toMatchObject({ class: 'network-error', reason: 'connection refused' });
  });

  it('network-error: the backend closes in the middle of the body', async () => {
    server = await rawServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"user":{"em')));
    expect((await sendEvent(event(server.url))).verdict).toMatchObject({ class: 'network-error' });
  });

  it('network-error: a backend that answers garbage instead of HTTP', async () => {
    server = await rawServer((socket) => socket.once('data', () => socket.end('SSH-2.0-OpenSSH\r\n')));
    expect((await sendEvent(event(server.url))).verdict).toMatchObject({ class: 'network-error' });
  });

  it('reads a 10 MB reply only up to the end of its first JSON value, as json.Decoder does', async () => {
    const big = `{"user":{"email":"a@x","level":0}}${' '.repeat(10 * 1024 * 1024)}`;
    server = await httpServer((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(big);
    });
    const exchange = await sendEvent(event(server.url));
    expect(exchange.reply).toMatchObject({ truncated: false, bytes: '{"user":{"email":"a@x","level":0}}'.length });
    expect(exchange.verdict.verdict).toBe('allow');
  });

  it('decompresses a gzip bomb only as far as the first JSON value', async () => {
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"user":{"email":"a@x","level":0}}'), Buffer.alloc(50 * 1024 * 1024, 0x20)]));
    server = await httpServer((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(bomb);
    });
    const exchange = await sendEvent(event(server.url));
    expect(exchange.reply).toMatchObject({ truncated: false, bytes: '{"user":{"email":"a@x","level":0}}'.length });
    expect(exchange.verdict.verdict).toBe('allow');
  });

  it('a notification that fails changes nothing in Xray', async () => {
    const exchange = await sendEvent(event(await closedPortUrl(), { type: 'disconnect' }));
    expect(exchange.verdict).toMatchObject({ verdict: 'ignored', class: 'network-error' });
  });
});
