/** xray-backend against bad input, missing secrets and headers, and through its admin API. */
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { buildEventBody } from '../../../src/xray/wire/dialect.js';
import { dialectNamed } from '../../../src/xray/wire/dialects/index.js';
import { HY_USERS, ALICE, FRANK, SECRET, start, facts, send, status, raw, admin, useBackends } from './backend-helpers.js';

useBackends();

describe('xray-backend bad input', () => {
  it('answers 400 with a JSON {"error"} to bodies that are not a valid event (X07)', async () => {
    const backend = await start();
    const cases: [string, RegExp][] = [
      ['not json at all', /^body is not JSON/],
      ['', /^body is not JSON/],
      ['[1,2]', /not a JSON object/],
      ['{"type":"authorization"}', /"credential" is missing/],
      [`{"type":"authorization","credential":5}`, /"credential" must be a string/],
      [`{"type":"reauthorize","credential":"${ALICE}"}`, /"type" must be one of/],
      [`{"credential":"${ALICE}"}`, /"type" is missing/],
      [`{"type":"authorization","credential":"${ALICE}"} trailing`, /^body is not JSON/],
      ['['.repeat(500_000), /^body is not JSON/],
    ];
    for (const [body, reason] of cases) {
      const reply = await raw(backend.url, body, { headers: { 'content-type': 'application/json' } });
      expect(reply.status, body).toBe(400);
      expect(reply.headers['content-type']).toMatch(/^application\/json/);
      expect((reply.json as { error: string }).error).toMatch(reason);
    }
    expect(backend.stats().byStatus).toEqual({ 400: cases.length });
  });

  it('answers 413 to a 2 MB body without reading it, and keeps serving', async () => {
    const backend = await start();
    const big = Buffer.alloc(2 << 20, 0x20);
    const reply = await raw(backend.url, big, { headers: { 'content-type': 'application/json' } });
    expect(reply.status).toBe(413);
    expect(reply.json).toEqual({ error: 'request body over 1048576 bytes' });
    // Without a Content-Length (chunked), reading stops at the limit.
    const chunks = function* (): Generator<Buffer> {
      for (let i = 0; i < 32; i++) yield Buffer.alloc(64 << 10, 0x20);
    };
    const streamed = await raw(backend.url, Readable.from(chunks()));
    expect(streamed.status).toBe(413);
    expect(await status(backend, 'authorization', facts(ALICE))).toBe(200);
  });

  it('survives clients that leave mid-body or send headers and nothing more', async () => {
    const backend = await start();
    const port = backend.port!;
    for (const payload of [`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"type":`, 'POST / HTTP/1.1\r\nHost: x\r\n']) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(payload, () => setTimeout(() => socket.destroy(), 50));
        });
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
    }
    expect(await status(backend, 'authorization', facts(ALICE))).toBe(200);
  });

  it('times out a client that never finishes its request', async () => {
    const backend = await start({ requestTimeoutMs: 300 });
    const closed = await new Promise<string>((resolve) => {
      const socket = connect(backend.port!, '127.0.0.1', () => socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{'));
      let received = '';
      socket.on('data', (d) => (received += d.toString()));
      socket.on('close', () => resolve(received));
      setTimeout(() => socket.destroy(), 5000);
    });
    expect(closed).toMatch(/^HTTP\/1\.1 408/);
    expect(await status(backend, 'authorization', facts(ALICE))).toBe(200);
  });

  it('accepts 16 KB of custom headers (X17)', async () => {
    const backend = await start();
    const body = buildEventBody(backend.dialect, 'authorization', facts(ALICE));
    expect((await raw(backend.url, body, { headers: { 'x-jwt': 'a'.repeat(16 << 10) } })).status).toBe(200);
  });
});

describe('xray-backend secrets and headers', () => {
  it('src: requires Authorization: Bearer <secret> on every event (X06)', async () => {
    const backend = await start({ dialect: dialectNamed('src'), secret: SECRET });
    const f = facts(ALICE);
    const missing = await send(backend, 'authorization', f);
    expect(missing.reply?.status).toBe(401);
    expect(JSON.parse(missing.reply!.body)).toEqual({ error: 'missing or wrong secret or header' });
    expect(await status(backend, 'authorization', f, { secret: 'wrong' })).toBe(401);
    expect(await status(backend, 'heartbeat', f, { secret: `${SECRET}x` })).toBe(401);
    expect(await status(backend, 'authorization', f, { secret: SECRET })).toBe(200);
    expect(await status(backend, 'connect', f, { secret: SECRET })).toBe(204);
    expect(backend.lines.join('\n')).not.toContain(SECRET);
  });

  it('wiki: requires the configured headers, name in any case, value exact', async () => {
    const backend = await start({ headers: [['X-Auth-Token', 'tok-1'], ['Authorization', 'Bearer abc']] });
    const f = facts(ALICE);
    expect(await status(backend, 'authorization', f)).toBe(401);
    expect(await status(backend, 'authorization', f, { headers: [['x-auth-token', 'tok-1']] })).toBe(401);
    expect(await status(backend, 'authorization', f, { headers: [['x-auth-token', 'tok-2'], ['Authorization', 'Bearer abc']] })).toBe(401);
    expect(await status(backend, 'authorization', f, { headers: [['X-AUTH-TOKEN', 'tok-1'], ['authorization', 'Bearer abc']] })).toBe(200);
  });

  it('hysteria2: events need no header even with a secret set (H13), the admin API does', async () => {
    const backend = await start({ dialect: dialectNamed('hysteria2'), usersFile: HY_USERS, secret: SECRET });
    expect(JSON.parse((await send(backend, 'authorization', facts('alice-2c5f9e1b7d'))).reply!.body)).toEqual({ ok: true, id: 'alice' });
    expect((await admin(backend, '/admin/sessions', undefined, 'wrong')).status).toBe(401);
    expect((await admin(backend, '/admin/sessions')).status).toBe(200);
  });
});

describe('xray-backend admin API', () => {
  it('lists live sessions with masked credentials, and stats', async () => {
    const backend = await start({ secret: SECRET });
    const f = facts(ALICE, { sourceIp: '2001:db8::5' });
    await send(backend, 'authorization', f, { secret: SECRET });
    await send(backend, 'connect', f, { secret: SECRET });
    const sessions = await admin(backend, '/admin/sessions');
    expect(sessions.status).toBe(200);
    expect(sessions.json).toEqual({
      sessions: [{ connection: f.connectionId, email: 'alice@example.com', credential: '550e8400-****-****-****-************', ip: '2001:db8::5', firstSeen: expect.any(String), lastSeen: expect.any(String), via: 'connect' }],
    });
    expect(sessions.text).not.toContain(ALICE);
    const stats = await admin(backend, '/admin/stats');
    expect(stats.json).toMatchObject({ byEvent: { authorization: 1, connect: 1, admin: 1 }, byStatus: { 200: 2, 204: 1 }, users: 7, sessions: 1, revoked: 0 });
  });

  it('refuses a missing or wrong secret, unknown endpoints, wrong methods and bad bodies', async () => {
    const backend = await start({ secret: SECRET });
    expect((await raw(new URL('/admin/sessions', backend.url).href, undefined, { method: 'GET' })).status).toBe(401);
    expect((await admin(backend, '/admin/sessions', undefined, 'nope')).status).toBe(401);
    expect((await admin(backend, '/admin/kick', {})).status).toBe(404);
    expect((await admin(backend, '/admin/revoke')).status).toBe(405);
    const notJson = await raw(new URL('/admin/revoke', backend.url).href, 'x', { headers: { authorization: `Bearer ${SECRET}` } });
    expect(notJson.status).toBe(400);
    expect((await admin(backend, '/admin/revoke', { user: ALICE })).json).toEqual({ error: 'expected {"credential": "..."}' });
    expect((await admin(backend, '/admin/revoke', { credential: 'x'.repeat(40) })).status).toBe(400);
    const unknown = await admin(backend, '/admin/revoke', { credential: FRANK.replace('a6', 'b6') });
    expect(unknown.json).toMatchObject({ known: false, revoked: true, changed: true });
    expect((await admin(backend, '/admin/restore', { credential: ALICE })).json).toMatchObject({ known: true, revoked: false, changed: false });
  });
});
