/** xray-backend under attack: garbage, huge declared bodies, slowloris, idle floods, cut requests, and reloads of files that never end, block or are broken. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { askThroughout, Attacks, openFds, reloadBadFiles, replaceFile, rssBytes, startServer, stopWithSigterm, within, type Served } from './chaos.js';

const ALICE = '550e8400-e29b-41d4-a716-446655440000';
const NEWCOMER = '11111111-2222-4333-8444-555555555555';
const dir = mkdtempSync(join(tmpdir(), 'authkit-chaos-xray-'));
const users = join(dir, 'users.json');
const usersWith = (...credentials: string[]): string => JSON.stringify(credentials.map((credential, i) => ({ credential, email: `u${i}@x` })));
writeFileSync(users, usersWith(ALICE));
let served: Served | undefined;
afterAll(() => {
  served?.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function status(port: number, credential: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/auth`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'authorization', credential, connection: 'c', sourceIP: '198.51.100.1' }), signal: AbortSignal.timeout(5000),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('xray-backend under attack', () => {
  it('lives, answers throughout, stays bounded, logs every reload and stops on SIGTERM', async () => {
    served = await startServer(['xray-backend', '--listen', '127.0.0.1:0', '--users', users, '--quiet'], /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(served.log())![1]);
    const pid = served.child.pid!;
    const baseline = { rss: rssBytes(pid), fds: openFds(pid) };
    const attacks = new Attacks({ port });
    attacks.send(30, () => randomBytes(2048));
    attacks.send(20, () => Buffer.from('POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n{"type":'));
    attacks.slow(50, Buffer.from(`POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n`));
    attacks.idle(300);
    attacks.cut(30, Buffer.from(`POST /auth HTTP/1.1\r\nContent-Length: 80\r\n\r\n${JSON.stringify({ type: 'authorization', credential: ALICE })}`));
    const during = await askThroughout(async () => expect(await status(port, ALICE)).toBe(200), 3000);
    expect(during.length).toBeGreaterThanOrEqual(3);
    expect(served.child.exitCode).toBeNull();
    const peakRss = rssBytes(pid);
    attacks.stop();
    expect(await status(port, ALICE)).toBe(200);
    // Every attacking socket's descriptor is given back.
    expect(await within(10_000, () => openFds(pid) <= baseline.fds + 2)).toBe(true);
    expect(peakRss - baseline.rss).toBeLessThan(150 * 2 ** 20);

    // Reloads of a FIFO, an endless file, a broken file: each refused with a line, then the next valid file applies.
    await reloadBadFiles(served, users, '[{"credential": ');
    const replace = (make: (path: string) => void): void => replaceFile(users, make);
    expect(await status(port, ALICE)).toBe(200);
    expect(await status(port, NEWCOMER)).toBe(401);
    replace((p) => writeFileSync(p, usersWith(ALICE, NEWCOMER)));
    expect(await within(10_000, () => /reloaded, 2 users/.test(served!.log()))).toBe(true);
    expect(await status(port, NEWCOMER)).toBe(200);
    expect(rssBytes(pid) - baseline.rss).toBeLessThan(150 * 2 ** 20);

    // The endless file again, then SIGTERM: it stops, whatever a reload is doing.
    replace((p) => symlinkSync('/dev/zero', p));
    expect(await stopWithSigterm(served.child)).toBeLessThan(5000);
    expect(served.log()).toMatch(/xray-backend: stopping/);
  }, 60_000);
});
