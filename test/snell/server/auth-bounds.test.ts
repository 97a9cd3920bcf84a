/**
 * snell-serve bounds its trial authentications (docs/snell.md §9 "authkit's bounded scans"):
 * past the scans running and the queue, a connection is closed at once as busy; a cached IP
 * never waits.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { KdfBackend } from '../../../src/snell/wire/kdf.js';
import { kdf, probe, serve, users, useSnellServers } from './harness.js';

useSnellServers();

describe('snell-serve bounds its trial authentications (--max-pending-auth, --auth-queue)', () => {
  /** Polls a condition, at most 1,000 times 10 ms apart. */
  const until = async (ready: () => boolean): Promise<void> => {
    for (let i = 0; i < 1000 && !ready(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('past one scan and two waiting, junk is closed as busy and counted; a client of a cached IP still gets its PONG', async () => {
    // Scans are held, not slow: every derivation for the user "held" waits until the test lets
    // go, and a junk scan reaches it right after "good" (first in the file, cached for 127.0.0.1).
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    const holding: KdfBackend = {
      name: kdf.name,
      derive: async (psk, salt) => {
        if (Buffer.from(psk).toString() === 'psk-of-held') await held;
        return kdf.derive(psk, salt);
      },
    };
    const lines: string[] = [];
    const bounded = [{ name: 'good', psk: 'psk-of-good' }, { name: 'held', psk: 'psk-of-held' }, ...users.slice(0, 10)];
    const server = await serve({ users: bounded, kdf: holding, maxPendingAuth: 1, authQueue: 2, log: (line) => lines.push(line) });
    expect(server.authLoad()).toEqual({ running: 0, waiting: 0, maxRunning: 1, maxWaiting: 2 });
    // The good user's first connection scans (and matches before "held"): 127.0.0.1 is cached.
    expect(await probe(server, { psk: 'psk-of-good' })).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });

    const junk = (): { socket: net.Socket; closed: Promise<void> } => {
      const socket = net.connect({ host: '127.0.0.1', port: server.address.port }, () => socket.write(randomBytes(64)));
      socket.on('error', () => undefined);
      return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
    };
    let closedCount = 0;
    const clients = Array.from({ length: 6 }, () => junk());
    clients.forEach((c) => void c.closed.then(() => closedCount++));
    await until(() => server.stats().busy === 3 && closedCount === 3);
    // One scan running (held), two waiting, three closed at once as busy.
    expect(server.authLoad()).toMatchObject({ running: 1, waiting: 2 });
    expect(server.stats()).toMatchObject({ busy: 3, rejected: 0, authenticated: 1 });
    expect(closedCount).toBe(3);
    expect(lines.filter((l) => / - - busy \(scans: 1 running, 2 waiting; --max-pending-auth 1, --auth-queue 2\)$/.test(l))).toHaveLength(3);

    // The cached user is tried at once: a PONG while every slot is taken, and nothing moved.
    expect(await probe(server, { psk: 'psk-of-good' })).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    expect(server.authLoad()).toMatchObject({ running: 1, waiting: 2 });
    expect(server.stats()).toMatchObject({ busy: 3, authenticated: 2 });

    // Let the scans go: the rest are rejected after the no-match delay, as OpenSnell rejects them.
    letGo();
    await Promise.all(clients.map((c) => c.closed));
    await until(() => server.stats().rejected === 3);
    expect(server.stats()).toMatchObject({ busy: 3, rejected: 3, authenticated: 2 });
    expect(server.authLoad()).toMatchObject({ running: 0, waiting: 0 });
    expect(lines.filter((l) => /rejected \(no user matches/.test(l))).toHaveLength(3);
  });
});
