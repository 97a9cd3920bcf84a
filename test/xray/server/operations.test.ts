/** Running xray-backend: fault injection, logging, users file reloads, a Unix socket. */
import { describe, expect, it } from 'vitest';
import { eventually } from '../../helpers.js';
import { rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../../src/shared/errors.js';
import { dialectNamed } from '../../../src/xray/wire/dialects/index.js';
import { startXrayBackend } from '../../../src/xray/server/server.js';
import { USERS, HY_USERS, ALICE, BOB_DISABLED, FRANK, SECRET, start, facts, send, status, raw, admin, leaveStaleSocket, useTempDir, useBackends } from './backend-helpers.js';

const dir = useTempDir();
useBackends();

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

  it('answers the requests in flight before it drops their connections on close', async () => {
    const backend = await start({ faults: { latencyMs: [10_000, 10_000] } });
    const pending = send(backend, 'authorization', facts(ALICE));
    await eventually(() => backend.stats().injected.delayed === 1);
    await backend.close();
    expect((await pending).reply?.status).toBe(200);
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
