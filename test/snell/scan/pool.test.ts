import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ScanPool } from '../../../src/snell/scan/pool.js';
import { prestartScanWorkers } from '../../../src/snell/scan/workers.js';
import { splitFirstBytes } from '../../../src/snell/scan/trial-match.js';
import { buildFirstPacket } from '../../../src/snell/wire/first-packet.js';
import { selectKdf, type KdfBackendName } from '../../../src/snell/wire/kdf.js';
import { UserStore } from '../../../src/snell/user-store.js';

const kdf = await selectKdf();
const users = Array.from({ length: 90 }, (_, i) => ({ name: `user-${i}`, psk: `psk-${i}-${randomBytes(6).toString('hex')}` }));
const store = UserStore.fromUsers(users);
const frameFor = async (psk: string): Promise<Uint8Array> =>
  (await buildFirstPacket({ psk, kdf, request: { command: 'connect-v2', clientId: new Uint8Array(0), host: 'example.com', port: 443 } })).wire;
const miss = new Uint8Array(64);

describe('a scan pool with this thread as one of its scanners (snell-auth)', () => {
  // Three scanners: two workers and this thread, which takes the last slice (60-89).
  const pool = new ScanPool(kdf.name, { size: 3, inThread: kdf });
  afterAll(() => pool.close());

  it('has the scanners it was asked for, this thread among them', () => {
    expect(pool.size).toBe(3);
  });

  it.each([0, 29, 30, 59, 60, 89])('finds user %i at the edges of every slice, a worker\'s and its own', async (index) => {
    const found = await pool.scan(store, splitFirstBytes(await frameFor(users[index]!.psk)), 'v4');
    expect(found).toMatchObject({ index, kind: 'v4' });
  });

  it('tries every user once on a miss, across the three slices', async () => {
    expect(await pool.scan(store, splitFirstBytes(miss), 'v4')).toMatchObject({ index: -1, trials: 90 });
  });

  it('runs scans side by side and gives each its own answer', async () => {
    const indexes = [5, 70, 45, 88, 31];
    const frames = await Promise.all(indexes.map((i) => frameFor(users[i]!.psk)));
    const found = await Promise.all(frames.map((frame) => pool.scan(store, splitFirstBytes(frame), 'v4')));
    expect(found.map((f) => f.index)).toEqual(indexes);
  });

  it('scans the bytes as they were when the scan began, as a worker gets a copy', async () => {
    const first = splitFirstBytes(await frameFor(users[75]!.psk));
    const scanning = pool.scan(store, first, 'v4');
    // The slices are posted a microtask later; this runs after that and before this thread's
    // scanner takes its message (a later setImmediate), so without its copy it would scan zeros.
    await new Promise((resolve) => setImmediate(resolve));
    first.bytes.fill(0);
    expect(await scanning).toMatchObject({ index: 75 });
  });
});

describe('workers started before the pool', () => {
  it('are taken over by the next pool, which scans with them', async () => {
    prestartScanWorkers(1);
    const pool = new ScanPool(kdf.name, { size: 2, inThread: kdf });
    try {
      expect(await pool.scan(store, splitFirstBytes(await frameFor(users[12]!.psk)), 'v4')).toMatchObject({ index: 12 });
      expect(await pool.scan(store, splitFirstBytes(miss), 'v4')).toMatchObject({ index: -1, trials: 90 });
    } finally {
      await pool.close();
    }
  });

  it('fail the scan with the worker\'s error when its KDF cannot load, and never hang', async () => {
    prestartScanWorkers(1);
    const pool = new ScanPool('no-such-kdf' as KdfBackendName, { size: 2 });
    try {
      await expect(pool.scan(store, splitFirstBytes(miss), 'v4')).rejects.toThrow();
    } finally {
      await pool.close();
    }
  });
});
