/**
 * xray-sim's client against raw-socket backends that record the exact bytes received: every
 * point where Go's net/http and encoding/json decide the verdict (docs/xray-extauth.md, "The
 * client"), for each dialect.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendEvent, type EventRequest } from '../../src/xray/client.js';
import { GoTransport } from '../../src/xray/transport.js';
import { XrayLoadTarget } from '../../src/xray/load.js';
import { wiki } from '../../src/xray/wire/dialects/wiki.js';
import { src } from '../../src/xray/wire/dialects/src.js';
import { hysteria2 } from '../../src/xray/wire/dialects/hysteria2.js';
import { ALLOW, HYSTERIA_OK, rawPeer, reply, selfSignedCertificate, type RawPeer } from './raw-peer.js';

const CREDENTIAL = '550e8400-e29b-41d4-a716-446655440000';
const facts = {
  credential: CREDENTIAL, connectionId: 'a3f1c2d4-9b8e-4f1a-b2c3-d4e5f6a7b8c9', protocol: 'vless', inboundTag: 'in<x>&',
  sourceIp: '::1.2.3.4', sourcePort: 40000, localIp: 'fe80::1%eth0', localPort: 443, tx: '0',
};
const NOW = new Date(1_710_000_000_000);
const event = (url: string, extra: Partial<EventRequest> = {}): EventRequest => ({
  url, dialect: src, type: 'authorization', facts, timeoutSeconds: 5, now: NOW, secret: 's3cret', ...extra,
});

const peers: RawPeer[] = [];
async function peer(...args: Parameters<typeof rawPeer>): Promise<RawPeer> {
  const p = await rawPeer(...args);
  peers.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

const host = (p: RawPeer): string => `127.0.0.1:${p.port}`;

describe('the request bytes are Go\'s', () => {
  it('src: Host, User-Agent, Content-Length, sorted headers, Accept-Encoding; json.Marshal\'s body', async () => {
    const p = await peer(() => ALLOW);
    const exchange = await sendEvent(event(p.url));
    const body = '{"type":"authorization","connection_id":"a3f1c2d4-9b8e-4f1a-b2c3-d4e5f6a7b8c9","inbound_tag":"in\\u003cx\\u003e\\u0026",' +
      `"credential":"${CREDENTIAL}","ip":"[::102:304]","local_ip":"[fe80::1%eth0]"}`;
    expect(p.requests[0]!.head).toBe(
      `POST /auth HTTP/1.1\r\nHost: ${host(p)}\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ${body.length}\r\n` +
      'Authorization: Bearer s3cret\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n',
    );
    expect(p.requests[0]!.body.toString()).toBe(body);
    expect(Object.keys(exchange.request.headers)).toEqual(['Host', 'User-Agent', 'Content-Length', 'Authorization', 'Content-Type', 'Accept-Encoding']);
    expect(exchange.verdict.class).toBe('allow');
  });

  it('wiki: custom headers canonicalised and sorted among Go\'s, U+2028 and & escaped in the body', async () => {
    const p = await peer(() => ALLOW);
    await sendEvent(event(`${p.url}?token=abc`, {
      dialect: wiki, secret: undefined, headers: [['x-b', '2'], ['X-A', ' 1 '], ['accept-LANGUAGE', 'en']], facts: { ...facts, email: 'a&b\u2028c@x' },
    }));
    const { head, body } = p.requests[0]!;
    expect(head.split('\r\n').slice(0, 8)).toEqual([
      'POST /auth?token=abc HTTP/1.1', `Host: ${host(p)}`, 'User-Agent: Go-http-client/1.1', `Content-Length: ${body.length}`,
      'Accept-Language: en', 'Content-Type: application/json', 'X-A: 1', 'X-B: 2',
    ]);
    expect(head).toMatch(/X-B: 2\r\nAccept-Encoding: gzip\r\n\r\n$/);
    expect(head).not.toMatch(/connection:/i);
    expect(body.toString()).toContain('"email":"a\\u0026b\\u2028c@x"');
  });

  it('hysteria2: no secret, addr with its zone, the same header order', async () => {
    const p = await peer(() => HYSTERIA_OK);
    const exchange = await sendEvent(event(p.url, { dialect: hysteria2, secret: undefined, facts: { ...facts, sourceIp: 'fe80::1%eth0' } }));
    expect(p.requests[0]!.head).toBe(`POST /auth HTTP/1.1\r\nHost: ${host(p)}\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ${p.requests[0]!.body.length}\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n`);
    expect(JSON.parse(p.requests[0]!.body.toString())).toMatchObject({ addr: '[fe80::1%eth0]:40000', auth: CREDENTIAL, tx: 0 });
    expect(exchange.verdict.class).toBe('allow');
  });

  it('a header name Go cannot send is a transport error, and nothing is sent', async () => {
    const p = await peer(() => ALLOW);
    const exchange = await sendEvent(event(p.url, { dialect: wiki, headers: [['x y', 'v']] }));
    expect(exchange.verdict).toMatchObject({ verdict: 'deny', class: 'network-error', reason: 'net/http: invalid header field name "x y"' });
    expect(p.requests).toHaveLength(0);
  });
});

describe('redirects, followed as Go\'s http.Client follows them', () => {
  it('302 to an allowing endpoint allows: a bodiless GET with the headers, Referer added', async () => {
    const p = await peer((r) => (r.path === '/auth' ? reply(302, '', { Location: '/ok' }) : ALLOW));
    const exchange = await sendEvent(event(p.url));
    expect(exchange.verdict.class).toBe('allow');
    expect(exchange.redirects).toEqual([{ status: 302, location: '/ok' }]);
    expect(exchange.verdict.warnings.join(' ')).toMatch(/redirected 302 -> \/ok/);
    expect(p.requests[1]!.head).toBe(
      `GET /ok HTTP/1.1\r\nHost: ${host(p)}\r\nUser-Agent: Go-http-client/1.1\r\n` +
      `Authorization: Bearer s3cret\r\nContent-Type: application/json\r\nReferer: http://${host(p)}/auth\r\nAccept-Encoding: gzip\r\n\r\n`,
    );
  });

  it('307 re-sends the POST and its body; a 401 at the end is a policy deny (a heartbeat\'s deletes the cache entry)', async () => {
    const p = await peer((r) => (r.path === '/auth' ? reply(307, '', { Location: '/deny' }) : reply(401)));
    const auth = await sendEvent(event(p.url));
    expect(auth.verdict).toMatchObject({ verdict: 'deny', class: 'policy-deny' });
    expect(p.requests[1]!.method).toBe('POST');
    expect(p.requests[1]!.body.equals(p.requests[0]!.body)).toBe(true);
    expect(p.requests[1]!.head).toContain(`\r\nReferer: http://${host(p)}/auth\r\n`);
    const beat = await sendEvent(event(p.url, { type: 'heartbeat' }));
    expect(beat.verdict).toMatchObject({ verdict: 'deny', class: 'policy-deny' });
    expect(beat.verdict.effect).toMatch(/cached \(credential, IP\) entry is deleted/);
  });

  it('a redirect to another host drops Authorization and keeps the rest', async () => {
    const other = await peer(() => ALLOW, { host: '127.0.0.2' });
    const p = await peer(() => reply(308, '', { Location: other.url }));
    const exchange = await sendEvent(event(p.url));
    expect(exchange.verdict.class).toBe('allow');
    expect(other.requests[0]!.head).not.toMatch(/authorization/i);
    expect(other.requests[0]!.head).toMatch(/\r\nContent-Type: application\/json\r\n/);
  });

  it('the 10th request\'s redirect is "stopped after 10 redirects": a network-error deny', async () => {
    const p = await peer((r, i) => reply(302, '', { Location: `/hop${i + 1}` }));
    const exchange = await sendEvent(event(p.url));
    expect(exchange.verdict).toMatchObject({ verdict: 'deny', class: 'network-error', reason: 'stopped after 10 redirects' });
    expect(p.requests).toHaveLength(10);
  });
});

describe('the reply, read as far as Go reads it', () => {
  const bigUser = `{"user":{"email":"${'a'.repeat(2 << 20)}@x","level":1}}`;

  it('a 2 MiB user object allows (ExtAuth), and a 2 MiB id allows (Hysteria 2)', async () => {
    const p = await peer((r) => (r.path === '/h' ? reply(200, `{"ok":true,"id":"${'i'.repeat(2 << 20)}"}`) : reply(200, bigUser)));
    expect((await sendEvent(event(p.url))).verdict).toMatchObject({ class: 'allow', user: { level: 1 } });
    const h = await sendEvent(event(p.url.replace('/auth', '/h'), { dialect: hysteria2, secret: undefined }));
    expect(h.verdict.class).toBe('allow');
  });

  it('what follows the first JSON value is ignored by ExtAuth and refused by Hysteria 2', async () => {
    const p = await peer((r) => reply(200, r.path === '/auth' ? '{"user":{"email":"a@x"}}<html>' : '{"ok":true,"id":"u"}<html>'));
    expect((await sendEvent(event(p.url))).verdict.class).toBe('allow');
    expect((await sendEvent(event(`http://${host(p)}/h`, { dialect: hysteria2, secret: undefined }))).verdict).toMatchObject({ verdict: 'deny', class: 'protocol-error' });
  });

  it('a Content-Length longer than the bytes sent: ExtAuth allows once the first value is complete; Hysteria 2 denies', async () => {
    const cut = (body: string): { send: string; close: boolean } => ({ send: `HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n${body}`, close: true });
    const p = await peer((r) => cut(r.path === '/auth' ? '{"user":{"email":"a@x"}}' : '{"ok":true,"id":"u"}'));
    expect((await sendEvent(event(p.url))).verdict.class).toBe('allow');
    expect((await sendEvent(event(`http://${host(p)}/h`, { dialect: hysteria2, secret: undefined }))).verdict).toMatchObject({ verdict: 'deny', class: 'network-error' });
  });

  it('skips an unsolicited 100 Continue, accepts bare LF, and lets chunked win over Content-Length', async () => {
    const body = '{"user":{"email":"a@x","level":0}}';
    const answers: Record<string, string> = {
      '/continue': `HTTP/1.1 100 Continue\r\n\r\n${ALLOW}`,
      '/lf': `HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: ${body.length}\n\n${body}`,
      '/both': `HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    };
    const p = await peer((r) => answers[r.path]);
    for (const path of Object.keys(answers)) {
      expect((await sendEvent(event(`http://${host(p)}${path}`))).verdict, path).toMatchObject({ class: 'allow', user: { email: 'a@x' } });
    }
  });

  it('nesting to Go\'s 10,000 levels parses; one more is Go\'s "exceeded max depth"', async () => {
    const nested = (depth: number): string => `{"user":{"email":"a@x"},"deep":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    const p = await peer((r) => reply(200, nested(r.path === '/ok' ? 10_000 : 10_001)));
    expect((await sendEvent(event(`http://${host(p)}/ok`))).verdict.class).toBe('allow');
    expect((await sendEvent(event(`http://${host(p)}/deep`))).verdict).toMatchObject({ class: 'protocol-error' });
  });

  it('invalid UTF-8 and lone surrogates become U+FFFD the way Go replaces them', async () => {
    const body = Buffer.concat([Buffer.from('{"user":{"email":"a'), Buffer.from([0xe2, 0x82]), Buffer.from('b\\ud800c\\udc00\\ud83d\\ude00"}}')]);
    const p = await peer(() => Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
    const exchange = await sendEvent(event(p.url));
    expect(exchange.verdict.user).toEqual({ email: 'a\ufffd\ufffdb\ufffdc\ufffd\u{1f600}', level: 0 });
  });
});

describe('over TLS: ALPN h2 and http/1.1, as Go\'s DefaultTransport offers them', () => {
  const certificate = selfSignedCertificate();
  const transport = (): GoTransport => new GoTransport({ tls: { ca: certificate.cert } });

  it('https with HTTP/1.1: the same bytes as over plain TCP', async () => {
    const p = await peer(() => ALLOW, { tls: certificate });
    const t = transport();
    const exchange = await sendEvent(event(p.url, { transport: t }));
    t.close();
    expect(exchange.verdict.class).toBe('allow');
    expect(p.requests[0]!.head).toMatch(new RegExp(`^POST /auth HTTP/1.1\r\nHost: ${host(p)}\r\nUser-Agent: Go-http-client/1.1\r\n`));
  });

  it('speaks HTTP/2 when the backend picks h2', async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    const server = http2.createSecureServer({ key: certificate.key, cert: certificate.cert });
    server.on('stream', (stream, headers) => {
      seen.push(headers);
      stream.on('data', () => undefined);
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end('{"user":{"email":"h2@x","level":2}}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const t = transport();
    try {
      const exchange = await sendEvent(event(`https://127.0.0.1:${port}/auth`, { transport: t }));
      expect(exchange.verdict).toMatchObject({ class: 'allow', user: { email: 'h2@x', level: 2 } });
      expect(exchange.reply?.proto).toBe('HTTP/2.0');
      expect(seen[0]).toMatchObject({ ':method': 'POST', ':path': '/auth', 'user-agent': 'Go-http-client/2.0', 'accept-encoding': 'gzip', authorization: 'Bearer s3cret' });
    } finally {
      t.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('--load sends the same bytes and follows redirects the same way', () => {
  it('a load request is the one-shot request, and a 302 to an allow counts as allow', async () => {
    const p = await peer((r) => (r.path === '/auth' ? reply(302, '', { Location: '/ok' }) : ALLOW));
    const target = new XrayLoadTarget({
      url: p.url, dialect: src, secret: 's3cret', headers: [], timeoutSeconds: 5, kickOnDeny: false, base: facts,
      credentials: [CREDENTIAL], ipsPerUser: 1, maxConnections: 1, pipelining: 1,
    });
    await target.open();
    try {
      const outcome = await new Promise<string>((resolve) => target.send(undefined, resolve));
      expect(outcome).toBe('allow');
    } finally {
      await target.close();
    }
    const oneShot = await peer(() => ALLOW);
    await sendEvent(event(oneShot.url, { facts: { ...facts, sourceIp: '::1.2.3.4' } }));
    const shape = (head: string): string => head.replace(/127\.0\.0\.1:\d+/, 'HOST').replace(/Content-Length: \d+/, 'Content-Length: N');
    expect(shape(p.requests[0]!.head)).toBe(shape(oneShot.requests[0]!.head));
    expect(p.requests[1]!.head).toMatch(/^GET \/ok HTTP\/1.1\r\n/);
  });
});
