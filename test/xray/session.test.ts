import { afterEach, describe, expect, it } from 'vitest';
import { runSessions, type SessionOptions } from '../../src/xray/session.js';
import { src } from '../../src/xray/wire/dialects/src.js';
import { wiki } from '../../src/xray/wire/dialects/wiki.js';
import { hysteria2 } from '../../src/xray/wire/dialects/hysteria2.js';
import { httpServer, type TestServer } from './servers.js';

const credential = '550e8400-e29b-41d4-a716-446655440000';
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A backend that allows, except on the heartbeats it is told to deny; it records everything. */
async function recordingBackend(denyHeartbeatsFrom = Infinity): Promise<TestServer> {
  let heartbeats = 0;
  return httpServer((request, res) => {
    const event = JSON.parse(request.body);
    if (event.type === 'heartbeat' && ++heartbeats >= denyHeartbeatsFrom) {
      res.statusCode = 401;
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"user":{"email":"alice@example.com","level":0}}');
  });
}

function options(url: string, extra: Partial<SessionOptions> = {}): SessionOptions {
  return {
    url, dialect: src, timeoutSeconds: 2, kickOnDeny: false,
    facts: { credential, protocol: 'vless', sourceIp: '198.51.100.10', sourcePort: 40000, localIp: '10.0.0.1', localPort: 443 },
    sourceIps: ['198.51.100.10'], connections: 1, staggerSeconds: 0.1, heartbeatSeconds: 0.2, durationSeconds: 0.7, ttlSeconds: 60, ...extra,
  };
}

const types = (s: TestServer): string[] => s.requests.map((r) => JSON.parse(r.body).type);

describe('connections as Xray runs them against ExtAuth', () => {
  it('sends authorization, connect, heartbeats on the interval, then one disconnect, all for one connection id', async () => {
    server = await recordingBackend();
    const report = await runSessions(options(server.url));
    expect(types(server)[0]).toBe('authorization');
    expect(types(server).at(-1)).toBe('disconnect');
    // Ticks at 0.2, 0.4 and 0.6 s of a 0.7 s connection: three at most. A Go ticker drops ticks
    // that fall due while a heartbeat is in flight, so a slow moment sends fewer, never none.
    const heartbeats = types(server).filter((t) => t === 'heartbeat').length;
    expect(heartbeats).toBeGreaterThanOrEqual(1);
    expect(heartbeats).toBeLessThanOrEqual(3);
    expect(new Set(server.requests.map((r) => JSON.parse(r.body).connection_id)).size).toBe(1);
    expect(report).toMatchObject({ admitted: 1, denied: 0 });
  });

  it('skips authorization on a cache hit for the same (credential, IP) but still sends connect', async () => {
    server = await recordingBackend();
    const report = await runSessions(options(server.url, { connections: 4, sourceIps: ['198.51.100.10', '198.51.100.11'], heartbeatSeconds: 0, durationSeconds: 0.1 }));
    expect(report.counts).toMatchObject({ authorization: 2, 'cache-hit': 2, connect: 4, disconnect: 4 });
    const authorizedIps = server.requests.filter((r) => JSON.parse(r.body).type === 'authorization').map((r) => JSON.parse(r.body).ip);
    expect(authorizedIps).toEqual(['198.51.100.10', '198.51.100.11']);
  });

  it('authorizes every connection when the TTL is 0 (Xray\'s default: no cache)', async () => {
    server = await recordingBackend();
    const report = await runSessions(options(server.url, { connections: 3, ttlSeconds: 0, heartbeatSeconds: 0, durationSeconds: 0.05 }));
    expect(report.counts).toMatchObject({ authorization: 3, 'cache-hit': 0 });
  });

  it('keeps sending heartbeats after a 401 without kick-on-deny (the archived code), and deletes the cache entry', async () => {
    server = await recordingBackend(2);
    // The second connection starts after the first has ended (2 s), so after its heartbeats' 401s.
    const report = await runSessions(options(server.url, { connections: 2, staggerSeconds: 2.5, durationSeconds: 2 }));
    const heartbeats = server.requests.map((r) => JSON.parse(r.body)).filter((b) => b.type === 'heartbeat');
    // The first connection's heartbeats go on after the first 401 (up to nine ticks in 2 s; a Go
    // ticker drops the ones that fall due during a slow reply, never all but one).
    expect(heartbeats.filter((b) => b.connection_id === heartbeats[0].connection_id).length).toBeGreaterThanOrEqual(2);
    expect(report.counts.kicked).toBe(0);
    expect(report.denied).toBe(2);
    // The second connection started after the first heartbeat 401 removed the entry: a miss.
    expect(report.counts.authorization).toBe(2);
  });

  it('ends the connection at the first heartbeat 401 with kick-on-deny, then disconnects once', async () => {
    server = await recordingBackend(1);
    const report = await runSessions(options(server.url, { dialect: wiki, kickOnDeny: true, durationSeconds: 1 }));
    expect(types(server)).toEqual(['authorization', 'connect', 'heartbeat', 'disconnect']);
    expect(report.counts.kicked).toBe(1);
  });

  it('cancels a heartbeat still in flight when the connection ends, then disconnects', async () => {
    server = await httpServer((request, res) => {
      if (JSON.parse(request.body).type === 'heartbeat') return; // never answers
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"user":{"email":"a@x","level":0}}');
    });
    const started = Date.now();
    const report = await runSessions(options(server.url, { timeoutSeconds: 0, heartbeatSeconds: 0.2, durationSeconds: 0.6 }));
    // An upper bound only to show it does not hang: far above the time it takes, so a busy machine cannot fail it.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(report.counts.disconnect).toBe(1);
    expect(report.timeline.find((e) => e.event === 'heartbeat')?.exchange?.verdict.reason).toMatch(/cancelled/);
  });

  it('has no cache for Hysteria 2: every connection is authorized', async () => {
    server = await httpServer((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true,"id":"a"}');
    });
    const report = await runSessions(options(server.url, { dialect: hysteria2, connections: 3, heartbeatSeconds: 0, durationSeconds: 0.05 }));
    expect(report.counts).toMatchObject({ authorization: 3, 'cache-hit': 0 });
  });

  it('refuses a denied connection: no connect, no heartbeat, no disconnect', async () => {
    server = await httpServer((_r, res) => {
      res.statusCode = 403;
      res.end();
    });
    const report = await runSessions(options(server.url));
    expect(types(server)).toEqual(['authorization']);
    expect(report.counts.refused).toBe(1);
  });
});
