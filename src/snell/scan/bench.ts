/**
 * `snell-auth bench`: what trial authentication costs per KDF backend, on synthetic users.
 * Every path is timed as a server would run it: the cold path (no user matches: the whole
 * store is scanned), a serial match (16 users), a parallel match (all users) and a cache hit.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { buildFirstPacket } from '../wire/first-packet.js';
import { SALT_BYTES, type KdfBackend } from '../wire/kdf.js';
import { SERIAL_THRESHOLD, TrialAuthenticator } from '../model.js';
import { type SnellUser, UserStore } from '../user-store.js';

export interface TrialBenchOptions {
  users: number;
  kdfs: KdfBackend[];
  /** Time spent on each measurement (at least one operation runs). */
  seconds: number;
  workers?: number;
  progress?: (message: string) => void;
}

export interface TrialBenchRow {
  kdf: string;
  users: number;
  /** One thread, KDF only. */
  derivationsPerSec: number;
  cold: { userTrialsPerSec: number; msPerConnection: number; path: 'serial' | 'parallel' };
  serial: { connectionsPerSec: number; users: number };
  /** null when the users fit the serial path (16 or fewer). */
  parallel: { connectionsPerSec: number; users: number } | null;
  cacheHit: { connectionsPerSec: number; trials: number };
}

export function syntheticUsers(count: number): SnellUser[] {
  return Array.from({ length: count }, (_, i) => ({ name: `user-${i}`, psk: randomBytes(16).toString('base64') }));
}

/** Runs `operation` for about `seconds`, at least once; returns operations per second. */
async function rate(seconds: number, operation: () => Promise<unknown> | unknown): Promise<number> {
  await operation();
  let count = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    await operation();
    count++;
    elapsed = performance.now() - started;
  } while (elapsed < seconds * 1000);
  return (count * 1000) / elapsed;
}

/** `count` of `list`, spread evenly: the one in the middle of each of `count` equal parts. */
export function spreadOver<T>(list: readonly T[], count: number): T[] {
  return Array.from({ length: count }, (_, k) => list[Math.floor(((k + 0.5) * list.length) / count)]!);
}

export async function benchTrialAuth(options: TrialBenchOptions): Promise<TrialBenchRow[]> {
  const users = syntheticUsers(options.users);
  const store = UserStore.fromUsers(users);
  const serialStore = UserStore.fromUsers(users.slice(0, Math.min(SERIAL_THRESHOLD, users.length)));
  const builder = options.kdfs.find((k) => k.deriveSync) ?? options.kdfs[0]!;
  const frame = async (psk: string): Promise<Uint8Array> =>
    (await buildFirstPacket({ psk, kdf: builder, request: { command: 'connect-v2', clientId: new Uint8Array(0), host: 'example.com', port: 443 } })).wire;
  // Matches take the 16 users in turn, spread evenly over the store: a match's cost is its user's
  // position, so 16 random users (as before) made each run's figure a draw, up to ~15 % off.
  let turn = 0;
  const inTurn = <T>(list: T[]): T => list[turn++ % list.length]!;
  const missBlob = await frame(randomBytes(16).toString('base64'));
  const serialBlobs = await Promise.all(spreadOver(users.slice(0, serialStore.size), 16).map((u) => frame(u.psk)));
  const parallelBlobs = await Promise.all(spreadOver(users, 16).map((u) => frame(u.psk)));

  const rows: TrialBenchRow[] = [];
  for (const kdf of options.kdfs) {
    const say = (what: string): void => options.progress?.(`${kdf.name}: ${what}`);
    say('KDF');
    const salt = randomBytes(SALT_BYTES);
    const psk = store.psk(0);
    const derivationsPerSec = await rate(options.seconds, () => kdf.deriveSync?.(psk, salt) ?? kdf.derive(psk, salt));

    // The server's algorithm alone: authkit's legacy pass after a miss is not part of it.
    const auth = await TrialAuthenticator.create(store, { kdf, workers: options.workers, detectLegacy: false });
    say(`cold path, ${store.size} users`);
    const coldPerSec = await rate(options.seconds, () => auth.authenticate(missBlob));
    say('parallel match');
    const parallelPerSec = store.size > SERIAL_THRESHOLD ? await rate(options.seconds, () => auth.authenticate(inTurn(parallelBlobs))) : undefined;
    say('cache hit');
    const hitBlob = parallelBlobs[0]!;
    await auth.authenticate(hitBlob, '192.0.2.1');
    const hit = await auth.authenticate(hitBlob, '192.0.2.1');
    const cachePerSec = await rate(options.seconds, () => auth.authenticate(hitBlob, '192.0.2.1'));
    await auth.close();

    say(`serial match, ${serialStore.size} users`);
    const serialAuth = await TrialAuthenticator.create(serialStore, { kdf, detectLegacy: false });
    const serialPerSec = await rate(options.seconds, () => serialAuth.authenticate(inTurn(serialBlobs)));
    await serialAuth.close();

    rows.push({
      kdf: kdf.name,
      users: store.size,
      derivationsPerSec,
      cold: { userTrialsPerSec: coldPerSec * store.size, msPerConnection: 1000 / coldPerSec, path: store.size > SERIAL_THRESHOLD ? 'parallel' : 'serial' },
      serial: { connectionsPerSec: serialPerSec, users: serialStore.size },
      parallel: parallelPerSec === undefined ? null : { connectionsPerSec: parallelPerSec, users: store.size },
      cacheHit: { connectionsPerSec: cachePerSec, trials: hit.trials },
    });
  }
  return rows;
}
