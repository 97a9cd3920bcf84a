/**
 * Trial authentication exactly as OpenSnell alpha's multi-user server runs it (docs/snell.md §9):
 * the source-IP cache first, then a serial scan in file order up to 16 users, above that a
 * parallel scan where the first worker to match wins; an empty store fails closed.
 * It answers "which user is this, which path found it, and what did it cost".
 */
import { AeadDirection, aeadKey } from './wire/aead.js';
import { deriveSnellKey, SALT_BYTES, selectKdf, type KdfBackend } from './wire/kdf.js';
import { sealFrame } from './wire/frame.js';
import { concatBytes, utf8 } from '../shared/bytes.js';
import { openLegacyChunk } from './wire/legacy.js';
import { decodeRequest } from './wire/request.js';
import { IpCache } from './scan/ip-cache.js';
import { canonicalIp } from '../shared/ip.js';
import { ScanPool } from './scan/pool.js';
import { splitFirstBytes, TRIAL_BYTES, type FirstBytes, type LegacyFind, type ScanTest, type SliceResult } from './scan/trial-match.js';
import { monotonicMs } from '../shared/clock.js';
import { scanSlice } from './scan/slice-scan.js';
import { type SnellUser, UserStore } from './user-store.js';

export const SERIAL_THRESHOLD = 16;

export type TrialPath = 'cache' | 'serial' | 'parallel';
export type LegacyVersion = 'legacy-v1' | 'legacy-v2' | 'legacy-v3' | 'legacy-v2-v3';
export type TrialFailure = 'no-match' | 'empty-store' | 'truncated' | LegacyVersion;

export type TrialOutcome =
  | { ok: true; user: string; index: number; path: TrialPath; trials: number; micros: number }
  | {
      ok: false;
      reason: TrialFailure;
      trials: number;
      micros: number;
      /** For `truncated`: how many bytes there were. */
      bytes?: number;
      /** For a legacy stream: whose PSK it is, though OpenSnell would still reject it. */
      user?: string;
      index?: number;
    };

/**
 * Asked after the IP cache missed and before the scan (snell-serve's --max-pending-auth): a
 * release to call once the scan is over, `busy` to scan nothing, `gone` when the client left.
 */
export type ScanGate = () => Promise<(() => void) | 'busy' | 'gone'>;

/** What a gated authentication may also end in: no scan was run, for the reason given. */
export type GatedOutcome = TrialOutcome | { ok: false; reason: 'busy' | 'gone'; trials: number; micros: number };

export interface MatchedKey {
  store?: UserStore;
  derived?: Uint8Array;
}

export interface TrialOptions {
  kdf?: KdfBackend;
  /**
   * After OpenSnell's scan misses, test the same derivations for a v1-v3 stream and name it.
   * Default true; it adds ~2 % to a miss and never changes the reported `trials` and `micros`.
   */
  detectLegacy?: boolean;
  cacheCapacity?: number;
  /** Scan workers; defaults to one per core, at least two. */
  workers?: number;
  /** Scan workers already started (booting while the caller loads the rest); the authenticator owns them from here. */
  pool?: ScanPool;
}

export class TrialAuthenticator {
  private readonly cache: IpCache;
  private pool: ScanPool | undefined;

  private constructor(
    private store: UserStore,
    readonly kdf: KdfBackend,
    private readonly options: TrialOptions,
  ) {
    this.cache = new IpCache(options.cacheCapacity);
    this.pool = options.pool;
  }

  /**
   * `users` may still be loading (a promise): the scan workers then start at once, and boot
   * (~70 ms each) while the file is read and parsed, instead of after it.
   */
  static async create(users: UserStore | readonly SnellUser[] | Promise<UserStore>, options: TrialOptions = {}): Promise<TrialAuthenticator> {
    const kdf = options.kdf ?? (await selectKdf());
    if (!(users instanceof Promise)) {
      const authenticator = new TrialAuthenticator(users instanceof UserStore ? users : UserStore.fromUsers(users), kdf, options);
      await authenticator.warmUp();
      return authenticator;
    }
    // Awaited below; until then a failed load must not count as an unhandled rejection.
    users.catch(() => undefined);
    const authenticator = new TrialAuthenticator(UserStore.fromUsers([]), kdf, options);
    authenticator.startPool();
    try {
      await authenticator.warmUp();
      authenticator.store = await users;
      if (authenticator.store.size > SERIAL_THRESHOLD) await authenticator.pool!.ready;
      else await authenticator.close();
    } catch (error) {
      await authenticator.close();
      throw error;
    }
    return authenticator;
  }

  /**
   * Runs the code paths once and starts the scan workers a store of this size needs, so the
   * reported time of the first capture is what a running server would spend, not start-up.
   */
  private async warmUp(): Promise<void> {
    // Workers first: they boot on the other cores while this thread warms up.
    const pool = this.store.size > SERIAL_THRESHOLD ? this.startPool() : undefined;
    const psk = utf8.encode('warm-up');
    const salt = new Uint8Array(SALT_BYTES);
    const key = aeadKey(await deriveSnellKey(this.kdf, psk, salt), 'aes-128-gcm');
    const blob = concatBytes(salt, sealFrame(new AeadDirection('aes-128-gcm', key), Uint8Array.of(1)));
    const store = UserStore.fromUsers([{ name: 'warm-up', psk: 'warm-up' }]);
    await this.authenticateIn(store, blob, '192.0.2.1'); // serial match
    await this.authenticateIn(store, blob, '192.0.2.1'); // cache hit
    await this.authenticateIn(store, new Uint8Array(TRIAL_BYTES), undefined); // miss
    this.cache.clear();
    await pool?.ready;
  }

  private startPool(): ScanPool {
    this.pool ??= new ScanPool(this.kdf.name, { size: this.options.workers });
    return this.pool;
  }

  /**
   * Replaces the users as a whole snapshot. Cached indexes are kept, as in OpenSnell: a stale
   * one costs an extra trial and then falls through to the scan; it never authorises the wrong user.
   */
  replaceUsers(users: UserStore | readonly SnellUser[]): void {
    this.store = users instanceof UserStore ? users : UserStore.fromUsers(users);
  }

  get users(): UserStore {
    return this.store;
  }

  /**
   * `blob` is the client's first bytes with any obfs already stripped. `keyOut` receives the
   * matching user's KDF output and the snapshot it was found in (a server keys its reader with
   * them); it is never part of the outcome, which callers print.
   */
  async authenticate(blob: Uint8Array, sourceIp?: string, keyOut?: MatchedKey): Promise<TrialOutcome> {
    return this.authenticateIn(this.store, blob, sourceIp, keyOut) as Promise<TrialOutcome>;
  }

  /**
   * As `authenticate`, but the scan runs only once `gate` lets it: the cached user is tried at
   * once, and a connection whose cache hit matches never waits.
   */
  async authenticateGated(blob: Uint8Array, sourceIp: string | undefined, keyOut: MatchedKey | undefined, gate: ScanGate): Promise<GatedOutcome> {
    return this.authenticateIn(this.store, blob, sourceIp, keyOut, gate);
  }

  private async authenticateIn(store: UserStore, blob: Uint8Array, sourceIp: string | undefined, keyOut?: MatchedKey, gate?: ScanGate): Promise<GatedOutcome> {
    if (keyOut) keyOut.store = store;
    // The address's one spelling before the clock starts: the first IPv6 address costs node:net
    // ~10 ms to compile its pattern, which no running server pays per connection.
    const ip = sourceIp === undefined ? undefined : canonicalIp(sourceIp);
    const started = monotonicMs();
    const micros = (): number => microsSince(started);
    if (blob.length < TRIAL_BYTES) return { ok: false, reason: 'truncated', bytes: blob.length, trials: 0, micros: micros() };
    if (store.size === 0) return { ok: false, reason: 'empty-store', trials: 0, micros: micros() };
    const first = splitFirstBytes(blob);
    let trials = 0;

    const cached = ip === undefined ? undefined : this.cache.get(ip);
    if (cached !== undefined && cached < store.size) {
      trials++;
      const hit = await scanSlice(this.kdf, store, first, 'v4', cached, cached + 1);
      if (hit.kind) {
        if (keyOut) keyOut.derived = hit.derived;
        return { ok: true, user: store.name(cached), index: cached, path: 'cache', trials, micros: micros() };
      }
    }

    const release = gate ? await gate() : undefined;
    if (release === 'busy' || release === 'gone') return { ok: false, reason: release, trials, micros: micros() };
    try {
      return await this.scanFor(store, blob, first, ip, keyOut, trials, started);
    } finally {
      release?.();
    }
  }

  private async scanFor(
    store: UserStore, blob: Uint8Array, first: FirstBytes, sourceIp: string | undefined, keyOut: MatchedKey | undefined, trials: number, started: number,
  ): Promise<TrialOutcome> {
    const path: TrialPath = store.size <= SERIAL_THRESHOLD ? 'serial' : 'parallel';
    const found = await this.scan(store, first, (this.options.detectLegacy ?? true) ? 'v4-then-legacy' : 'v4');
    trials += found.trials;
    // What the server spent ends with the v4 test; the legacy test after it is authkit's diagnosis.
    const micros = microsSince(started, found.v4EndedAt);
    if (found.index >= 0) {
      if (sourceIp !== undefined) this.cache.set(sourceIp, found.index);
      if (keyOut) keyOut.derived = found.derived;
      return { ok: true, user: store.name(found.index), index: found.index, path, trials, micros };
    }
    const legacy = found.legacy;
    if (!legacy) return { ok: false, reason: 'no-match', trials, micros };
    const reason = legacyVersion(legacy, blob);
    return { ok: false, reason, user: store.name(legacy.index), index: legacy.index, trials, micros };
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  private scan(store: UserStore, first: FirstBytes, test: ScanTest): Promise<SliceResult> {
    if (store.size <= SERIAL_THRESHOLD) return scanSlice(this.kdf, store, first, test, 0, store.size);
    return this.startPool().scan(store, first, test);
  }

}

/**
 * v1 is the ChaCha20 one. Among AES streams the request's command tells v2 (CONNECT-v2) from
 * v3 (CONNECT, UDP); when the capture ends before the request, it cannot be told.
 */
function legacyVersion(legacy: LegacyFind, blob: Uint8Array): LegacyVersion {
  if (legacy.kind === 'legacy-chacha') return 'legacy-v1';
  try {
    const { payload } = openLegacyChunk(new AeadDirection('aes-128-gcm', aeadKey(legacy.derived, 'aes-128-gcm')), blob, SALT_BYTES);
    return decodeRequest(payload).request.command === 'connect-v2' ? 'legacy-v2' : 'legacy-v3';
  } catch {
    return 'legacy-v2-v3';
  }
}

/** Whole µs from `started` to `ended` (or now), both monotonicMs(). */
function microsSince(started: number, ended = monotonicMs()): number {
  return Math.round((ended - started) * 1000);
}

/** One-shot trial authentication: builds an authenticator, runs it on one capture, and closes it. */
export async function trialAuthenticate(
  users: UserStore | readonly SnellUser[],
  blob: Uint8Array,
  options: TrialOptions & { sourceIp?: string } = {},
): Promise<TrialOutcome> {
  const authenticator = await TrialAuthenticator.create(users, options);
  try {
    return await authenticator.authenticate(blob, options.sourceIp);
  } finally {
    await authenticator.close();
  }
}
