/**
 * xray-tap and capnp-tap under attack, each as its own process in front of a real backend:
 * garbage, huge declared bodies and frames, slowloris, idle floods and cut requests from the
 * client side; garbage from the upstream side. Each lives, relays a good question throughout,
 * gives its descriptors back, keeps its memory bounded, and stops on SIGTERM with its totals.
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthServiceClient } from '../../src/capnp/client.js';
import { askThroughout, Attacks, openFds, rssBytes, startServer, stopWithSigterm, within, type Served } from './chaos.js';
import { ROOT } from '../helpers.js';

const ALICE = '550e8400-e29b-41d4-a716-446655440000';
const dir = mkdtempSync(join(tmpdir(), 'authkit-chaos-taps-'));
const children: Served[] = [];
const closers: (() => void)[] = [];
afterAll(() => {
  for (const served of children) served.child.kill('SIGKILL');
  for (const close of closers) close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(args: string[], ready: RegExp): Promise<Served> {
  const served = await startServer(args, ready);
  children.push(served);
  return served;
}

async function status(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/auth`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'authorization', credential: ALICE, connection: 'c', sourceIP: '198.51.100.1' }), signal: AbortSignal.timeout(5000),
  });
  await response.arrayBuffer();
  return response.status;
}

/** What the attacks have in common: run them, ask throughout, then check the tap's health. */
async function underAttack(tap: Served, attack: (attacks: Attacks) => void, target: ConstructorParameters<typeof Attacks>[0], ask: () => Promise<void>): Promise<void> {
  const pid = tap.child.pid!;
  const baseline = { rss: rssBytes(pid), fds: openFds(pid) };
  const attacks = new Attacks(target);
  attack(attacks);
  const during = await askThroughout(ask, 3000);
  expect(during.length).toBeGreaterThanOrEqual(3);
  expect(tap.child.exitCode).toBeNull();
  const peakRss = rssBytes(pid);
  attacks.stop();
  await ask();
  // Every attacking connection and its upstream connection are given back (a clean close leaves
  // the other side 5 s to finish).
  expect(await within(15_000, () => openFds(pid) <= baseline.fds + 4)).toBe(true);
  expect(peakRss - baseline.rss).toBeLessThan(150 * 2 ** 20);
}

describe('the taps under attack', () => {
  it('xray-tap: lives, relays throughout, stays bounded, and stops on SIGTERM; a garbage backend is relayed, not fatal', async () => {
    const backend = await serve(['xray-backend', '--listen', '127.0.0.1:0', '--users', join(ROOT, 'fixtures', 'xray', 'users.json'), '--quiet'], /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const backendPort = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(backend.log())![1];
    const tap = await serve(['xray-tap', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${backendPort}`, '--record', join(dir, 'x.jsonl'), '--quiet'], /listening on 127\.0\.0\.1:(\d+)/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(tap.log())![1]);
    await underAttack(tap, (attacks) => {
      attacks.send(30, () => randomBytes(2048));
      attacks.send(20, () => Buffer.from('POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n{"type":'));
      attacks.send(10, () => Buffer.from(`POST /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n`));
      attacks.slow(30, Buffer.from('POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n'));
      attacks.idle(200);
      attacks.cut(30, Buffer.from(`POST /auth HTTP/1.1\r\nContent-Length: 80\r\n\r\n${JSON.stringify({ type: 'authorization', credential: ALICE })}`));
    }, { port }, async () => expect(await status(port)).toBe(200));

    // A backend that answers garbage: relayed as it is (the client gets a network error, as it
    // would without the tap), and the tap says it could not read it.
    const garbage = net.createServer((socket) => {
      socket.on('error', () => undefined);
      // A head that ends but is not HTTP, then random bytes: the tap must give up reading it.
      socket.once('data', () => socket.end(Buffer.concat([Buffer.from('NOT-HTTP garbage\r\n\r\n'), randomBytes(4096)])));
    });
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    closers.push(() => garbage.close());
    const garbageTap = await serve(['xray-tap', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${(garbage.address() as net.AddressInfo).port}`, '--quiet'], /listening on 127\.0\.0\.1:(\d+)/);
    const garbagePort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(garbageTap.log())![1]);
    for (let i = 0; i < 20; i++) await status(garbagePort).catch(() => undefined);
    expect(garbageTap.child.exitCode).toBeNull();
    expect(garbageTap.log()).toMatch(/the backend's bytes are not HTTP\/1\.1 as Go reads it/);

    for (const served of [tap, garbageTap]) {
      expect(await stopWithSigterm(served.child)).toBeLessThan(5000);
      expect(served.child.exitCode).toBe(0);
      expect(served.log()).toMatch(/stopped\n\d+ exchanges on \d+ connections/);
    }
  });

  it('capnp-tap: lives, relays throughout, stays bounded, and stops on SIGTERM', async () => {
    const service = join(dir, 'auth.sock');
    await serve(['capnp-serve', '--socket', service, '--rules', join(ROOT, 'fixtures', 'capnp-serve', 'rules.json')], /listening on/);
    const listen = join(dir, 'tap.sock');
    const tap = await serve(['capnp-tap', '--listen', listen, '--upstream', service, '--quiet'], /listening on/);
    const request = { method: 'GET', host: 'example.com', path: '/', query: '', clientIp: '203.0.113.5:1', headers: [{ name: 'authorization', value: 'Bearer good' }] };
    const ask = async (): Promise<void> => {
      const client = await AuthServiceClient.connect(listen, 5000);
      try {
        expect((await client.check(request, { timeoutMs: 5000 })).decision.action).toBe('pass');
      } finally {
        client.close();
      }
    };
    // A frame head announcing 4 GiB, a segment table of 511 segments, then random bytes.
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(0, 0);
    huge.writeUInt32LE(0x1fffffff, 4);
    await underAttack(tap, (attacks) => {
      attacks.send(30, () => randomBytes(2048));
      attacks.send(20, () => huge);
      attacks.slow(30, Buffer.from(randomBytes(64)));
      attacks.idle(200);
      attacks.cut(30, randomBytes(200));
    }, { path: listen }, ask);
    expect(await stopWithSigterm(tap.child)).toBeLessThan(5000);
    expect(tap.child.exitCode).toBe(0);
    expect(tap.log()).toMatch(/stopped\n\d+ exchanges on \d+ connections/);
  });
});
