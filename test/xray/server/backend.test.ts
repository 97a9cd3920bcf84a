import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers.js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { ROOT, thrownBy } from '../../helpers.js';
import { InputError } from '../../../src/shared/errors.js';
import { sendEvent, type EventExchange } from '../../../src/xray/client.js';
import { uuidFromText } from '../../../src/xray/wire/credential.js';
import { buildEventBody, type ConnectionFacts, type EventType } from '../../../src/xray/wire/dialect.js';
import { dialectNamed } from '../../../src/xray/wire/dialects/index.js';
import { startXrayBackend, type XrayBackend, type XrayBackendOptions } from '../../../src/xray/server/server.js';
import { BackendState } from '../../../src/xray/server/state.js';
import { loadXrayUsers, parseXrayUsers, usersSnapshot } from '../../../src/xray/server/users.js';
import { backendOptions, parseHeader, parseLatency, xrayBackendCommand, type BackendFlags } from '../../../src/cli/xray-backend.js';
import { parseHostPort } from '../../../src/shared/listen.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-xray-backend-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const USERS = join(ROOT, 'fixtures', 'xray', 'users.json');
const HY_USERS = join(ROOT, 'fixtures', 'xray', 'hysteria-users.json');
const ALICE = '550e8400-e29b-41d4-a716-446655440000';
const BOB_DISABLED = 'e727d208-859c-41ff-bddc-91e22c3ae6bd';
const CAROL_EXPIRED = '755663ac-4877-4ad6-ba35-c438ee90c6b0';
const DAVE_OVER_QUOTA = '4acb8c91-287a-47f7-bc2e-4f460c8bba72';
const ERIN_MAX2 = 'cada5c99-c459-4f44-9507-1895d3606838';
const FRANK = 'a6368997-3825-4db2-b339-939719e7c0d2';
const SECRET = 's3cr3t-token-value';

const running: XrayBackend[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()));
});

interface Started extends XrayBackend {
  lines: string[];
}

async function start(overrides: Partial<XrayBackendOptions> = {}): Promise<Started> {
  const lines: string[] = [];
  const backend = await startXrayBackend({ dialect: dialectNamed('wiki'), usersFile: USERS, port: 0, log: (line) => lines.push(line), ...overrides });
  running.push(backend);
  return Object.assign(backend, { lines });
}

function facts(credential: string, over: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return { credential, connectionId: randomUUID(), protocol: 'vless', inboundTag: 'in', sourceIp: '198.51.100.10', sourcePort: 40000, localIp: '10.0.0.1', localPort: 443, ...over };
}

function send(backend: XrayBackend, type: EventType, f: ConnectionFacts, extra: { secret?: string; headers?: [string, string][] } = {}): Promise<EventExchange> {
  return sendEvent({ url: backend.url, unixSocket: backend.unixSocket, dialect: backend.dialect, type, facts: f, timeoutSeconds: 5, ...extra });
}

async function status(backend: XrayBackend, type: EventType, f: ConnectionFacts, extra: { secret?: string; headers?: [string, string][] } = {}): Promise<number | undefined> {
  return (await send(backend, type, f, extra)).reply?.status;
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

async function raw(url: string, body?: string | Buffer | Readable, init: { method?: string; headers?: Record<string, string>; socketPath?: string } = {}): Promise<Raw> {
  const dispatcher = init.socketPath ? new Agent({ connect: { socketPath: init.socketPath } }) : undefined;
  try {
    const res = await request(url, { method: (init.method ?? 'POST') as 'POST', body, headers: init.headers, dispatcher, signal: AbortSignal.timeout(5000) });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, text, json };
  } finally {
    await dispatcher?.close();
  }
}

const admin = (backend: XrayBackend, path: string, body?: unknown, secret = SECRET): Promise<Raw> =>
  raw(new URL(path, backend.url).href, body === undefined ? undefined : JSON.stringify(body), {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${secret}` },
    socketPath: backend.unixSocket,
  });

/** Polls until `condition` holds, at most `ms`. */

/** A socket file whose server died without closing it: a child process listens, then is SIGKILLed. */
async function leaveStaleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()).once('close', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
}

const inputError = (fn: () => unknown): string => thrownBy(InputError, fn).message;

describe('users file', () => {
  it('reads a JSON array and JSON Lines, lower-cases UUIDs and fills in defaults', () => {
    const entries = [
      { credential: ALICE.toUpperCase(), email: 'a@x', level: 7 },
      { credential: FRANK, enabled: false, expiresAt: '2030-01-31T00:00:00Z', quotaBytes: 10, usedBytes: 3, maxIps: 2 },
      { credential: 'short-text-id', expiresAt: 1900000000 },
    ];
    for (const text of [JSON.stringify(entries, null, 2), entries.map((e) => JSON.stringify(e)).join('\n') + '\n']) {
      const { users } = parseXrayUsers(text, 'u', 'uuid');
      expect(users.map((u) => u.credential)).toEqual([ALICE, FRANK, uuidFromText('short-text-id')]);
      expect(users[0]).toMatchObject({ email: 'a@x', level: 7, enabled: true, usedBytes: 0 });
      expect(users[1]).toMatchObject({ enabled: false, expiresAt: Date.parse('2030-01-31T00:00:00Z'), quotaBytes: 10, usedBytes: 3, maxIps: 2, level: 0 });
      expect(users[2]!.expiresAt).toBe(1900000000 * 1000);
    }
  });

  it('keeps Hysteria 2 auth strings exactly', () => {
    const { users } = parseXrayUsers('[{"credential": "User:Pass ü"}, {"credential": "user:pass ü"}]', 'h', 'text');
    expect(users.map((u) => u.credential)).toEqual(['User:Pass ü', 'user:pass ü']);
  });

  it('loads the fixtures', async () => {
    expect((await loadXrayUsers(USERS, 'uuid')).snapshot.users).toHaveLength(7);
    expect((await loadXrayUsers(HY_USERS, 'text')).snapshot.users).toHaveLength(6);
  });

  it('names the file, the line of the entry and the field, never the credential', () => {
    const lines = Array.from({ length: 8 }, (_, i) => `  {"credential": "${randomUUID()}", "email": "u${i}@x"}`);
    const bad = (entry: string, at = 5): string => {
      const copy = [...lines];
      copy[at] = `  ${entry}`;
      return inputError(() => parseXrayUsers(`[\n${copy.join(',\n')}\n]`, 'users.json', 'uuid'));
    };
    expect(bad(`{"credential": "${FRANK}", "level": -1}`)).toBe('users.json:7: "level" must be an integer 0..4294967295');
    expect(bad(`{"credential": "${FRANK}", "level": 4294967296}`)).toBe('users.json:7: "level" must be an integer 0..4294967295');
    expect(bad(`{"credential": "${FRANK}", "level": 1.5}`)).toBe('users.json:7: "level" must be an integer 0..4294967295');
    expect(bad(`{"credential": "${FRANK}", "enabled": "yes"}`)).toBe('users.json:7: "enabled" must be true or false');
    expect(bad(`{"credential": "${FRANK}", "maxIps": 0}`)).toBe('users.json:7: "maxIps" must be an integer 1..4294967295 (leave it out for no limit)');
    expect(bad(`{"credential": "${FRANK}", "quotaBytes": -5}`)).toMatch(/^users\.json:7: "quotaBytes" must be an integer 0\.\./);
    expect(bad(`{"credential": "${FRANK}", "expiresAt": "next week"}`)).toMatch(/^users\.json:7: "expiresAt" must be an ISO date/);
    expect(bad(`{"credential": "${FRANK}", "expiresAt": 1900000000000}`)).toBe('users.json:7: "expiresAt" looks like milliseconds; give unix seconds or an ISO date');
    expect(bad(`{"credential": "${FRANK}", "maxIPs": 2}`)).toMatch(/^users\.json:7: unknown field "maxIPs" \(known: credential, email/);
    expect(bad(`{"credential": "${FRANK}", "email": ""}`)).toBe('users.json:7: "email" must be a non-empty string');
    expect(bad('{"email": "x@y"}')).toBe('users.json:7: "credential" is missing');
    expect(bad('{"credential": 5}')).toBe('users.json:7: "credential" must be a string');
    const long = 'x'.repeat(31) + '-secret-text';
    const message = bad(`{"credential": "${long}"}`);
    expect(message).toBe('users.json:7: "credential" must be a UUID, or a text id of 1 to 30 bytes as Xray accepts (got 43 bytes)');
    expect(bad('"just a string"')).toBe('users.json:7: expected an object {"credential", ...}');
  });

  it('refuses duplicate credentials, also when they differ only in case', () => {
    const text = `[\n{"credential": "${ALICE}"},\n{"credential": "${FRANK}"},\n{"credential": "${ALICE.toUpperCase()}"}\n]`;
    const message = inputError(() => parseXrayUsers(text, 'users.json', 'uuid'));
    expect(message).toBe('users.json:4: duplicate credential (the same as line 2)');
    expect(message).not.toContain(ALICE.slice(0, 8));
    expect(inputError(() => parseXrayUsers('{"credential": "a"}\n\n{"credential": "a"}\n', 'h.jsonl', 'text'))).toBe('h.jsonl:3: duplicate credential (the same as line 1)');
  });

  it('refuses empty files, other JSON and syntax errors, naming the line', () => {
    expect(inputError(() => parseXrayUsers('', 'e.json', 'uuid'))).toBe('e.json: no users in the file');
    expect(inputError(() => parseXrayUsers('[]', 'e.json', 'uuid'))).toBe('e.json: no users in the file');
    expect(inputError(() => parseXrayUsers('credential,email\n', 'u.csv', 'uuid'))).toMatch(/^u\.csv: expected a JSON array of users or JSON Lines/);
    expect(inputError(() => parseXrayUsers(`[\n{"credential": "${ALICE}"},\n{"credential": \n`, 'u.json', 'uuid'))).toMatch(/^u\.json(:\d+:\d+)?: invalid JSON/);
    expect(inputError(() => parseXrayUsers(`{"credential": "${ALICE}"}\n{"credential": "${FRANK}",\n`, 'u.jsonl', 'uuid'))).toMatch(/^u\.jsonl:2(:\d+)?: invalid JSON/);
    expect(inputError(() => parseXrayUsers('[{"credential": ""}]', 'h.json', 'text'))).toBe('h.json:1: "credential" must be a non-empty string');
  });

  it('warns when two users share an email (Xray would merge their stats)', () => {
    const { warnings } = parseXrayUsers(`[\n{"credential": "${ALICE}", "email": "same"},\n{"credential": "${FRANK}", "email": "same"}\n]`, 'u.json', 'uuid');
    expect(warnings).toEqual(['u.json:3: email "same" is also used on line 2: Xray would count both users\' traffic as one']);
  });

  it('names a missing file', async () => {
    await expect(loadXrayUsers(join(dir, 'nope.json'), 'uuid')).rejects.toThrow(/^users file .*nope\.json: no such file$/);
  });
});

describe('session state', () => {
  const users = usersSnapshot(parseXrayUsers(readFileSync(USERS, 'utf8'), 'users.json', 'uuid').users, 'users.json');

  it('expires a session after the idle time, or after 3 observed heartbeat intervals if longer', () => {
    let clock = Date.now();
    const state = new BackendState(users, { kind: 'uuid', sessionIdleMs: 100, now: () => clock });
    state.connect({ credential: ERIN_MAX2, connectionId: 'c1', sourceIp: '192.0.2.1' });
    clock += 101;
    expect(state.sessions()).toHaveLength(0);
    state.connect({ credential: ERIN_MAX2, connectionId: 'c2', sourceIp: '192.0.2.1' });
    clock += 1000;
    state.heartbeat({ credential: ERIN_MAX2, connectionId: 'c2', sourceIp: '192.0.2.1' }); // 1000 ms apart, within... a new session (idle passed)
    clock += 1000;
    state.heartbeat({ credential: ERIN_MAX2, connectionId: 'c2', sourceIp: '192.0.2.1' });
    expect(state.sessions()).toHaveLength(1);
    clock += 2900;
    expect(state.sessions()).toHaveLength(1);
    clock += 200;
    expect(state.sessions()).toHaveLength(0);
  });

  it('counts distinct IPs, with IPv6 spellings and IPv4-mapped addresses as one client', () => {
    const state = new BackendState(users, { kind: 'uuid', sessionIdleMs: 60_000 });
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'a', sourceIp: '2001:db8::1' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'b', sourceIp: '2001:0db8:0:0::1' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'c', sourceIp: '::ffff:192.0.2.7' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'd', sourceIp: '192.0.2.7' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'e', sourceIp: '192.0.2.8' })).toEqual({ allow: false, reason: 'max-ips' });
    expect(state.liveIps(ERIN_MAX2)).toEqual(new Set(['2001:db8::1', '192.0.2.7']));
  });

  it('takes a new users snapshot as a whole, keeping revocations', () => {
    const state = new BackendState(users, { kind: 'uuid', sessionIdleMs: 60_000 });
    state.revoke(FRANK);
    state.replaceUsers(usersSnapshot(parseXrayUsers(`[{"credential": "${FRANK}"}, {"credential": "${BOB_DISABLED}"}]`, 'n', 'uuid').users, 'n'));
    expect(state.standing(ALICE)).toEqual({ allow: false, reason: 'unknown' });
    expect(state.standing(BOB_DISABLED).allow).toBe(true);
    expect(state.standing(FRANK)).toEqual({ allow: false, reason: 'revoked' });
  });
});

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

describe('xray-backend fault injection', () => {
  it('with rates of 0 answers normally', async () => {
    const backend = await start({ faults: { errorRate: 0, garbageRate: 0 } });
    expect(await status(backend, 'authorization', facts(ALICE))).toBe(200);
    expect(backend.stats().injected).toEqual({ delayed: 0, error: 0, garbage: 0 });
  });

  it('with an error rate of 1 answers every event 503 and acts on none', async () => {
    const backend = await start({ faults: { errorRate: 1 } });
    const exchange = await send(backend, 'connect', facts(ALICE));
    expect(exchange.reply?.status).toBe(503);
    expect((await send(backend, 'authorization', facts(ALICE))).verdict.class).toBe('upstream-error');
    expect(backend.state.sessions()).toHaveLength(0);
    expect(backend.stats().injected.error).toBe(2);
  });

  it('with a garbage rate of 1 answers 200 with a body the proxy cannot read', async () => {
    const backend = await start({ faults: { garbageRate: 1 } });
    const exchange = await send(backend, 'authorization', facts(ALICE));
    expect(exchange.reply?.status).toBe(200);
    expect(exchange.verdict).toMatchObject({ verdict: 'deny', class: 'protocol-error' });
    const hy = await start({ dialect: dialectNamed('hysteria2'), usersFile: HY_USERS, faults: { garbageRate: 1 } });
    expect((await send(hy, 'authorization', facts('alice-2c5f9e1b7d'))).verdict.class).toBe('protocol-error');
  });

  it('delays replies by the configured latency', async () => {
    const backend = await start({ faults: { latencyMs: [120, 150] } });
    const exchange = await send(backend, 'authorization', facts(ALICE));
    expect(exchange.reply?.status).toBe(200);
    expect(exchange.latencyMs).toBeGreaterThanOrEqual(110);
    expect(backend.stats().injected.delayed).toBe(1);
  });

  it('closes promptly while replies are being delayed', async () => {
    const backend = await start({ faults: { latencyMs: [10_000, 10_000] } });
    const pending = send(backend, 'authorization', facts(ALICE));
    await eventually(() => backend.stats().injected.delayed === 1);
    const started = Date.now();
    await backend.close();
    // Not after the 10 s delay it was injecting.
    expect(Date.now() - started).toBeLessThan(8000);
    await pending;
  });
});

describe('xray-backend logging', () => {
  it('logs one line per request with the credential masked and no secret', async () => {
    const backend = await start({ dialect: dialectNamed('src'), secret: SECRET });
    await send(backend, 'authorization', facts(ALICE), { secret: SECRET });
    await send(backend, 'heartbeat', facts(BOB_DISABLED), { secret: SECRET });
    await send(backend, 'authorization', facts(ALICE), { secret: 'wrong' });
    await raw(`${backend.url}?token=${SECRET}`, 'nope', { headers: { authorization: `Bearer ${SECRET}` } });
    expect(backend.lines).toHaveLength(4);
    expect(backend.lines[0]).toMatch(/^POST \/ authorization 200 \d+\.\dms 550e8400…$/);
    expect(backend.lines[1]).toMatch(/^POST \/ heartbeat 401 \d+\.\dms e727d208…$/);
    expect(backend.lines[2]).toMatch(/^POST \/ - 401 \d+\.\dms missing or wrong secret$/);
    expect(backend.lines[3]).toMatch(/^POST \/ - 400 \d+\.\dms body is not JSON/);
    const all = backend.lines.join('\n');
    for (const secret of [SECRET, ALICE, BOB_DISABLED]) expect(all).not.toContain(secret);
  });

  it('shows a Hysteria auth string only by its length', async () => {
    const backend = await start({ dialect: dialectNamed('hysteria2'), usersFile: HY_USERS });
    await send(backend, 'authorization', facts('alice-2c5f9e1b7d'));
    expect(backend.lines).toEqual([expect.stringMatching(/^POST \/ authorization 200 \S+ <16 bytes>$/)]);
  });
});

describe('xray-backend users file reload', () => {
  it('replaces the users when the file changes, and keeps the last good ones when it breaks', async () => {
    const file = join(dir, 'reload.json');
    writeFileSync(file, `[{"credential": "${ALICE}", "email": "a@x"}]\n`);
    const backend = await start({ usersFile: file, usersPollMs: 100 });
    expect(await status(backend, 'authorization', facts(FRANK))).toBe(401);

    writeFileSync(file, `[{"credential": "${ALICE}", "email": "a@x", "enabled": false},\n {"credential": "${FRANK}", "email": "f@x"}]\n`);
    await eventually(async () => (await status(backend, 'authorization', facts(FRANK))) === 200);
    expect(await status(backend, 'authorization', facts(ALICE))).toBe(403);
    expect(backend.lines).toContain(`users file ${file}: reloaded, 2 users`);

    writeFileSync(file, `[{"credential": "${ALICE}"},\n {"credential": "${FRANK}", "level": -3}]\n`);
    await eventually(() => backend.lines.some((l) => l.includes('not reloaded')));
    const complaint = backend.lines.filter((l) => l.includes('not reloaded'));
    expect(complaint).toEqual([`users file ${file}: not reloaded, keeping the last good users (2): ${file}:2: "level" must be an integer 0..4294967295`]);
    expect(await status(backend, 'authorization', facts(FRANK))).toBe(200);
    expect(await status(backend, 'authorization', facts(ALICE))).toBe(403);

    rmSync(file);
    await eventually(() => backend.lines.some((l) => l.includes('cannot read it')));
    expect(await status(backend, 'authorization', facts(FRANK))).toBe(200);

    // An editor's save: a new file renamed over the old name.
    writeFileSync(`${file}.tmp`, `{"credential": "${ALICE}", "email": "a@x"}\n`);
    const { renameSync } = await import('node:fs');
    renameSync(`${file}.tmp`, file);
    await eventually(async () => (await status(backend, 'authorization', facts(ALICE))) === 200);
    expect(await status(backend, 'authorization', facts(FRANK))).toBe(401);
  });

  it('refuses to start on a users file that is not valid', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, `[\n  {"credential": "${ALICE}", "level": "high"}\n]\n`);
    await expect(start({ usersFile: file })).rejects.toThrow(new InputError(`${file}:2: "level" must be an integer 0..4294967295`));
  });
});

describe('xray-backend over a Unix socket', () => {
  it('serves events and the admin API, replaces a stale socket file, and removes it on close', async () => {
    const socketPath = join(dir, 'backend.sock');
    await leaveStaleSocket(socketPath);
    expect(existsSync(socketPath)).toBe(true);
    const backend = await start({ port: undefined, unixSocket: socketPath, secret: SECRET });
    expect(backend.url).toBe('http://localhost/');
    expect(backend.unixSocket).toBe(socketPath);
    expect(await status(backend, 'authorization', facts(ALICE), { headers: [['authorization', `Bearer ${SECRET}`]] })).toBe(200);
    expect((await admin(backend, '/admin/sessions')).status).toBe(200);
    await expect(startXrayBackend({ dialect: dialectNamed('wiki'), usersFile: USERS, unixSocket: socketPath })).rejects.toThrow(/another process is listening on it/);
    await backend.close();
    expect(existsSync(socketPath)).toBe(false);
  });

  it('refuses a path that is not a socket', async () => {
    const path = join(dir, 'plain-file');
    writeFileSync(path, 'x');
    await expect(start({ port: undefined, unixSocket: path })).rejects.toThrow(`--unix-socket ${path}: exists and is not a socket`);
  });
});

describe('xray-backend hysteria2 dialect', () => {
  const hy = (): Promise<Started> => start({ dialect: dialectNamed('hysteria2'), usersFile: HY_USERS, secret: SECRET });
  const auth = async (backend: XrayBackend, credential: string, addr = '203.0.113.5:40000', tx = '0'): Promise<Raw> =>
    raw(backend.url, `{"addr":${JSON.stringify(addr)},"auth":${JSON.stringify(credential)},"tx":${tx}}`);

  it('allows with 200 {"ok":true,"id"} and denies with 200 {"ok":false} (H01, H02)', async () => {
    const backend = await hy();
    const allowed = await auth(backend, 'alice-2c5f9e1b7d');
    expect(allowed.status).toBe(200);
    expect(allowed.text).toBe('{"ok":true,"id":"alice"}');
    for (const credential of ['nobody', 'bob:hunter2-7a41', 'carol-8e02b6d3f1', 'dave-5b7c0a9e24', '', 'ALICE-2C5F9E1B7D']) {
      const denied = await auth(backend, credential);
      expect(denied.status, credential).toBe(200);
      expect(denied.text).toBe('{"ok":false}');
    }
  });

  it('gives a stable id over 20 reconnects and takes any tx, IPv6 addr and auth size (H03, H07, H08, H09)', async () => {
    const backend = await hy();
    for (let i = 0; i < 20; i++) expect((await auth(backend, 'alice-2c5f9e1b7d', `198.51.100.1:${40000 + i}`)).json).toEqual({ ok: true, id: 'alice' });
    expect((await auth(backend, 'alice-2c5f9e1b7d', '[2001:db8::1]:5566', '9223372036854775808')).json).toEqual({ ok: true, id: 'alice' });
    expect((await auth(backend, 'alice-2c5f9e1b7d', '[2001:db8::1]:5566', '12500000')).json).toEqual({ ok: true, id: 'alice' });
    expect((await auth(backend, 'ü'.repeat(600))).json).toEqual({ ok: false });
  });

  it('answers 400 to malformed requests, never ok:true (H10)', async () => {
    const backend = await hy();
    for (const body of ['nope', '{}', '{"addr":"1.2.3.4:5","tx":0}', '{"addr":"1.2.3.4:5","auth":"alice-2c5f9e1b7d","tx":-1}', '{"addr":5,"auth":"alice-2c5f9e1b7d"}']) {
      const reply = await raw(backend.url, body);
      expect(reply.status, body).toBe(400);
      expect(reply.text).not.toContain('"ok":true');
    }
  });

  it('denies a revoked user on the reconnect after a kick (H11)', async () => {
    const backend = await hy();
    expect((await admin(backend, '/admin/revoke', { credential: 'alice-2c5f9e1b7d' })).status).toBe(200);
    expect((await auth(backend, 'alice-2c5f9e1b7d')).json).toEqual({ ok: false });
  });

  it('limits a maxIps user to k source addresses (H14)', async () => {
    const backend = await hy();
    expect((await auth(backend, 'erin-d4e91f2a60', '192.0.2.1:1000')).json).toEqual({ ok: true, id: 'erin' });
    expect((await auth(backend, 'erin-d4e91f2a60', '[2001:db8::9]:1000')).json).toEqual({ ok: true, id: 'erin' });
    expect((await auth(backend, 'erin-d4e91f2a60', '192.0.2.1:2000')).json).toEqual({ ok: true, id: 'erin' });
    expect((await auth(backend, 'erin-d4e91f2a60', '192.0.2.3:1000')).json).toEqual({ ok: false });
  });
});

describe('authkit xray-backend (command)', () => {
  const flags = (over: Partial<BackendFlags> = {}): BackendFlags => ({ dialect: 'wiki', header: [], listen: '127.0.0.1:0', users: USERS, ...over });

  it('parses --listen, --latency-ms and --header', () => {
    expect(parseHostPort('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort('localhost:65535')).toEqual({ host: 'localhost', port: 65535 });
    for (const bad of ['8080', '127.0.0.1', '127.0.0.1:65536', ':80', '::1:80', 'a b:1']) {
      expect(inputError(() => parseHostPort(bad))).toBe(`--listen: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got "${bad}"`);
    }
    expect(parseLatency('50')).toEqual([50, 50]);
    expect(parseLatency('10-200')).toEqual([10, 200]);
    expect(parseLatency('5ms-1s')).toEqual([5, 1000]);
    expect(inputError(() => parseLatency('200-10'))).toMatch(/^--latency-ms: expected N or N-M/);
    // Every bound has a flag: the body limit and the request timeout too.
    const { options } = backendOptions({ listen: '127.0.0.1:0', users: USERS, dialect: 'wiki', bodyLimit: '2k', requestTimeout: '5s' } as BackendFlags);
    expect(options).toMatchObject({ bodyLimit: 2048, requestTimeoutMs: 5000 });
    expect(parseHeader('X-Token:  abc def ')).toEqual(['X-Token', 'abc def']);
    const message = inputError(() => parseHeader('no colon secret-value'));
    expect(message).toBe("--header: expected 'Name: value' with a non-empty name and value");
    expect(inputError(() => parseHeader('Bad Name: secret-value'))).toBe('--header: "Bad Name" is not a valid header name');
  });

  it('turns flags into options, with notes for what a real proxy cannot send', () => {
    const { options, notes } = backendOptions(flags({ dialect: 'src', secret: SECRET, header: ['X-A: b'], latencyMs: '5-10', errorRate: '0.1', garbageRate: '.2', sessionIdle: '30' }));
    expect(options).toMatchObject({ host: '127.0.0.1', port: 0, secret: SECRET, headers: [['X-A', 'b']], faults: { latencyMs: [5, 10], errorRate: 0.1, garbageRate: 0.2 }, sessionIdleMs: 30_000 });
    expect(notes).toEqual([expect.stringMatching(/^--secret is visible/), expect.stringMatching(/src dialect sends no custom headers/)]);
    expect(backendOptions(flags({ dialect: 'hysteria2', secretEnv: 'HOME' })).notes).toEqual([expect.stringMatching(/guard only \/admin\//)]);
    expect(backendOptions(flags()).notes).toEqual([expect.stringMatching(/^no --secret or --header/)]);
  });

  it('refuses bad flags with one InputError line', async () => {
    const longIds = join(dir, 'long-ids.json');
    writeFileSync(longIds, `[\n  {"credential": "${ALICE}"},\n  {"credential": "a Hysteria password is not a VLESS id"}\n]\n`);
    const cases: [string[], RegExp][] = [
      [['--users', USERS], /^where to listen: --listen HOST:PORT or --unix-socket PATH$/],
      [['--listen', '127.0.0.1:0', '--unix-socket', join(dir, 's'), '--users', USERS], /^give --listen or --unix-socket, not both$/],
      [['--listen', '127.0.0.1'], /^--users FILE is required$/],
      [['--listen', 'localhost', '--users', USERS], /^--listen: expected HOST:PORT/],
      [['--listen', '127.0.0.1:0', '--users', join(dir, 'missing.json')], /^users file .*missing\.json: no such file$/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--error-rate', '1.5'], /^--error-rate: expected a share from 0 to 1/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--error-rate', '0.6', '--garbage-rate', '0.6'], /^--error-rate and --garbage-rate add up to more than 1$/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--latency-ms', 'slow'], /^--latency-ms: expected N or N-M/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--session-idle', '0'], /^--session-idle: expected a duration like 500ms, 2s or 1m \(a bare number is seconds\)/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--secret-env', 'AUTHKIT_TEST_NO_SUCH_VAR'], /^--secret-env: environment variable AUTHKIT_TEST_NO_SUCH_VAR is not set or empty$/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--header', 'nocolon'], /^--header: expected 'Name: value'/],
      [['--listen', '127.0.0.1:0', '--users', longIds], /long-ids\.json:3: "credential" must be a UUID/],
    ];
    for (const [args, message] of cases) {
      // Already stopped: a case that wrongly starts a backend ends at once instead of hanging.
      const command = xrayBackendCommand({ log: () => {}, signal: AbortSignal.abort() }).exitOverride();
      const error = await command.parseAsync(['node', 'authkit', ...args]).then(() => undefined, (e: unknown) => e);
      expect(error, args.join(' ')).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('refuses an unknown dialect and a port in use', async () => {
    const command = xrayBackendCommand({ log: () => {} }).exitOverride().configureOutput({ writeErr: () => {} });
    await expect(command.parseAsync(['node', 'authkit', '--listen', '127.0.0.1:0', '--users', USERS, '--dialect', 'cnap'])).rejects.toMatchObject({ code: 'commander.invalidArgument' });
    const taken = await start();
    const again = xrayBackendCommand({ log: () => {} }).exitOverride();
    await expect(again.parseAsync(['node', 'authkit', '--listen', `127.0.0.1:${taken.port}`, '--users', USERS])).rejects.toThrow(new InputError(`cannot listen on 127.0.0.1:${taken.port}: address already in use`));
  });

  it('runs until stopped: one line with the URL, one log line per request, then closes with exit 0', async () => {
    const lines: string[] = [];
    const stop = new AbortController();
    let backend: XrayBackend | undefined;
    const command = xrayBackendCommand({ log: (line) => lines.push(line), signal: stop.signal, onListening: (b) => (backend = b) }).exitOverride();
    const done = command.parseAsync(['node', 'authkit', '--listen', '127.0.0.1:0', '--users', USERS, '--dialect', 'src', '--secret', SECRET]);
    await eventually(() => backend !== undefined);
    expect(lines.filter((l) => l.startsWith('xray-backend:'))).toEqual([`xray-backend: src dialect, 7 users from ${USERS}, listening on ${backend!.url}`]);
    expect(await status(backend!, 'authorization', facts(ALICE), { secret: SECRET })).toBe(200);
    stop.abort();
    await done;
    expect(process.exitCode).toBe(0);
    expect(lines.at(-1)).toBe('xray-backend: stopping');
    expect(lines.some((l) => /^POST \/ authorization 200 /.test(l))).toBe(true);
    expect(lines.join('\n')).not.toContain(ALICE);
    await expect(raw(backend!.url, '{}')).rejects.toThrow();
  });

  it('--quiet: no line per request, the start and stop lines still', async () => {
    const lines: string[] = [];
    const stop = new AbortController();
    let backend: XrayBackend | undefined;
    const command = xrayBackendCommand({ log: (line) => lines.push(line), signal: stop.signal, onListening: (b) => (backend = b) }).exitOverride();
    const done = command.parseAsync(['node', 'authkit', '--listen', '127.0.0.1:0', '--users', USERS, '--dialect', 'src', '--secret', SECRET, '--quiet']);
    await eventually(() => backend !== undefined);
    expect(await status(backend!, 'authorization', facts(ALICE), { secret: SECRET })).toBe(200);
    stop.abort();
    await done;
    expect(lines.some((l) => /authorization 200/.test(l))).toBe(false);
    expect(lines.some((l) => l.startsWith('xray-backend: src dialect'))).toBe(true);
    expect(lines.at(-1)).toBe('xray-backend: stopping');
  });
});
