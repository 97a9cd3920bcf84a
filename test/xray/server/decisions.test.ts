/** What xray-backend decides for each event of the wiki dialect (the table in src/xray/server/state.ts). */
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendEvent } from '../../../src/xray/client.js';
import { buildEventBody } from '../../../src/xray/wire/dialect.js';
import { ERIN_MAX2, ALICE, BOB_DISABLED, CAROL_EXPIRED, DAVE_OVER_QUOTA, FRANK, SECRET, start, facts, send, status, raw, admin, useTempDir, useBackends } from './backend-helpers.js';

const dir = useTempDir();
useBackends();

describe('xray-backend decisions (wiki dialect)', () => {
  it('allows a known, enabled, unexpired, within-quota user: 200 {"user":{"email","level"}} as JSON', async () => {
    const backend = await start();
    const exchange = await send(backend, 'authorization', facts(FRANK));
    expect(exchange.reply?.status).toBe(200);
    expect(exchange.reply?.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(exchange.reply!.body)).toEqual({ user: { email: 'frank@example.com', level: 2 } });
    expect(exchange.verdict).toMatchObject({ verdict: 'allow', class: 'allow', user: { email: 'frank@example.com', level: 2 }, warnings: [] });
  });

  it('answers with the credential as email when the users file gives none (never an empty email)', async () => {
    const file = join(dir, 'no-email.json');
    writeFileSync(file, `[{"credential": "${ALICE}"}]`);
    const backend = await start({ usersFile: file });
    const exchange = await send(backend, 'authorization', facts(ALICE));
    expect(JSON.parse(exchange.reply!.body)).toEqual({ user: { email: ALICE, level: 0 } });
  });

  it('denies unknown credentials with 401 and disabled, expired and over-quota users with 403', async () => {
    const backend = await start();
    const cases: [string, number, string][] = [
      [randomUUID(), 401, 'unknown'],
      ['not-even-a-uuid-and-longer-than-thirty-bytes', 401, 'unknown'],
      [BOB_DISABLED, 403, 'disabled'],
      [CAROL_EXPIRED, 403, 'expired'],
      [DAVE_OVER_QUOTA, 403, 'over-quota'],
    ];
    for (const [credential, code, reason] of cases) {
      const exchange = await send(backend, 'authorization', facts(credential));
      expect(exchange.reply?.status, reason).toBe(code);
      expect(JSON.parse(exchange.reply!.body)).toEqual({ error: reason });
      expect(exchange.verdict.class).toBe('policy-deny');
    }
    expect(backend.stats().decisions).toEqual({ unknown: 2, disabled: 1, expired: 1, 'over-quota': 1 });
  });

  it('decides on the credential alone: email/level hints naming another user change nothing (X28)', async () => {
    const backend = await start();
    const exchange = await send(backend, 'authorization', facts(ALICE, { email: 'frank@example.com', level: 2 }));
    expect(JSON.parse(exchange.reply!.body)).toEqual({ user: { email: 'alice@example.com', level: 0 } });
    expect(await status(backend, 'authorization', facts(BOB_DISABLED, { email: 'alice@example.com', level: 0 }))).toBe(403);
  });

  it('accepts an upper-case UUID as the same user, and timestamps skewed by 300 s (X12, X29)', async () => {
    const backend = await start();
    expect(await status(backend, 'authorization', facts(ALICE.toUpperCase()))).toBe(200);
    expect((await send(backend, 'authorization', facts(ALICE))).reply?.status).toBe(200);
    const skewed = await sendEvent({ url: backend.url, dialect: backend.dialect, type: 'authorization', facts: facts(ALICE), timeoutSeconds: 5, now: new Date(Date.now() - 300_000) });
    expect(skewed.reply?.status).toBe(200);
  });

  it('answers 2xx to connect and disconnect in any order, repeated, and for ids it never saw (X19, X24, X25)', async () => {
    const backend = await start();
    const f = facts(ALICE);
    expect(await status(backend, 'disconnect', f)).toBe(204);
    expect(await status(backend, 'connect', f)).toBe(204);
    expect(await status(backend, 'connect', f)).toBe(204);
    expect(backend.state.sessions()).toHaveLength(1);
    expect(await status(backend, 'disconnect', f)).toBe(204);
    expect(await status(backend, 'disconnect', f)).toBe(204);
    expect(await status(backend, 'connect', facts(randomUUID()))).toBe(204);
    expect(await status(backend, 'disconnect', facts(randomUUID()))).toBe(204);
    expect(await status(backend, 'connect', facts(BOB_DISABLED))).toBe(204);
    expect(backend.state.sessions().map((s) => s.credential)).toEqual([BOB_DISABLED]);
  });

  it('answers heartbeats 200, adopting connections it never saw, and 401 for users no longer allowed (X21, X23)', async () => {
    const backend = await start();
    const f = facts(ALICE);
    for (let i = 0; i < 5; i++) expect(await status(backend, 'heartbeat', f)).toBe(200);
    expect(backend.state.sessions()).toEqual([expect.objectContaining({ connectionId: f.connectionId, credential: ALICE, ip: '198.51.100.10', via: 'heartbeat' })]);
    for (const credential of [randomUUID(), BOB_DISABLED, CAROL_EXPIRED, DAVE_OVER_QUOTA]) {
      const exchange = await send(backend, 'heartbeat', facts(credential));
      expect(exchange.reply?.status).toBe(401);
      expect(exchange.verdict.class).toBe('policy-deny');
    }
  });

  it('gives identical answers to 50 authorizations of one user with new connection ids (X14)', async () => {
    const backend = await start();
    const bodies = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const exchange = await send(backend, 'authorization', facts(ERIN_MAX2));
      expect(exchange.reply?.status).toBe(200);
      bodies.add(exchange.reply!.body);
    }
    expect([...bodies]).toEqual(['{"user":{"email":"erin@example.com","level":1}}']);
  });

  it('is consistent under a burst of 200 parallel authorizations (X16)', async () => {
    const backend = await start();
    const statuses = await Promise.all(Array.from({ length: 200 }, () => status(backend, 'authorization', facts(ALICE))));
    expect(new Set(statuses)).toEqual(new Set([200]));
  });

  it('denies the (k+1)-th source IP of a maxIps user at authorization and frees the slot on disconnect (X26)', async () => {
    const backend = await start();
    const a = facts(ERIN_MAX2, { sourceIp: '192.0.2.1' });
    const b = facts(ERIN_MAX2, { sourceIp: '2001:db8::2' });
    expect(await status(backend, 'authorization', a)).toBe(200);
    expect(await status(backend, 'connect', a)).toBe(204);
    expect(await status(backend, 'authorization', b)).toBe(200);
    const third = await send(backend, 'authorization', facts(ERIN_MAX2, { sourceIp: '203.0.113.3' }));
    expect(third.reply?.status).toBe(403);
    expect(JSON.parse(third.reply!.body)).toEqual({ error: 'max-ips' });
    // More connections from an IP that already has a session are fine.
    expect(await status(backend, 'authorization', facts(ERIN_MAX2, { sourceIp: '192.0.2.1' }))).toBe(200);
    expect(await status(backend, 'authorization', facts(ERIN_MAX2, { sourceIp: '2001:db8::2' }))).toBe(200);
    // Heartbeats are never refused for the IP limit.
    expect(await status(backend, 'heartbeat', facts(ERIN_MAX2, { sourceIp: '203.0.113.9' }))).toBe(200);
    expect(await status(backend, 'disconnect', facts(ERIN_MAX2, { connectionId: (await backend.state.sessions()).find((s) => s.ip === '203.0.113.9')!.connectionId! }))).toBe(204);
    // Free 2001:db8::2: both of its connections disconnect.
    for (const s of backend.state.sessions().filter((s) => s.ip === '2001:db8::2')) {
      expect(await status(backend, 'disconnect', facts(ERIN_MAX2, { connectionId: s.connectionId! }))).toBe(204);
    }
    expect(await status(backend, 'authorization', facts(ERIN_MAX2, { sourceIp: '203.0.113.3' }))).toBe(200);
  });

  it('counts sessions that only a connect or heartbeat made live, and frees them when idle', async () => {
    let clock = Date.now();
    const backend = await start({ sessionIdleMs: 60_000, now: () => clock });
    expect(await status(backend, 'connect', facts(ERIN_MAX2, { sourceIp: '192.0.2.1' }))).toBe(204);
    expect(await status(backend, 'heartbeat', facts(ERIN_MAX2, { sourceIp: '192.0.2.2' }))).toBe(200);
    expect(await status(backend, 'authorization', facts(ERIN_MAX2, { sourceIp: '192.0.2.3' }))).toBe(403);
    clock += 60_001;
    expect(await status(backend, 'authorization', facts(ERIN_MAX2, { sourceIp: '192.0.2.3' }))).toBe(200);
  });

  it('after a revoke: heartbeat 401, authorization 403 from another IP; after a restore: allowed again (X22)', async () => {
    const backend = await start({ secret: SECRET });
    const live = facts(ALICE, { sourceIp: '192.0.2.10' });
    expect(await status(backend, 'authorization', live, { secret: SECRET })).toBe(200);
    expect(await status(backend, 'connect', live, { secret: SECRET })).toBe(204);
    const revoked = await admin(backend, '/admin/revoke', { credential: ALICE });
    expect(revoked.status).toBe(200);
    expect(revoked.json).toEqual({ credential: '550e8400-****-****-****-************', known: true, revoked: true, changed: true });
    expect(await status(backend, 'heartbeat', live, { secret: SECRET })).toBe(401);
    const again = await send(backend, 'authorization', facts(ALICE, { sourceIp: '203.0.113.50' }), { secret: SECRET });
    expect(again.reply?.status).toBe(403);
    expect(JSON.parse(again.reply!.body)).toEqual({ error: 'revoked' });
    expect((await admin(backend, '/admin/restore', { credential: ALICE.toUpperCase() })).json).toEqual({ credential: '550e8400-****-****-****-************', known: true, revoked: false, changed: true });
    expect(await status(backend, 'heartbeat', live, { secret: SECRET })).toBe(200);
    expect(await status(backend, 'authorization', facts(ALICE, { sourceIp: '203.0.113.50' }), { secret: SECRET })).toBe(200);
  });

  it('accepts the event fields of the other dialect and future ones, and any Content-Type (X08, X10)', async () => {
    const backend = await start();
    const body = JSON.stringify({ type: 'authorization', credential: ALICE, connection_id: randomUUID(), inbound_tag: 'x', flow: 'xtls-rprx-vision', ip: '[2001:db8::1]' });
    for (const headers of [{ 'content-type': 'text/plain' }, {}]) {
      const reply = await raw(backend.url, body, { headers });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ user: { email: 'alice@example.com', level: 0 } });
    }
  });

  it('takes events on any path outside /admin/, and only POST', async () => {
    const backend = await start();
    const body = buildEventBody(backend.dialect, 'authorization', facts(ALICE));
    expect((await raw(new URL('/auth/extauth', backend.url).href, body)).status).toBe(200);
    const get = await raw(backend.url, undefined, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.json).toEqual({ error: 'events are POSTed' });
  });
});
