/**
 * Trial authentication exactly as OpenSnell alpha's multi-user server runs it (spec §9):
 * the source-IP cache first, then a serial scan in file order up to 16 users, above that a
 * parallel scan where the first worker to match wins; an empty store fails closed.
 * It answers "which user is this, which path found it, and what did it cost".
 */
import { performance } from 'node:perf_hooks';
import { AeadDirection, aeadKey } from './aead.js';
import { deriveSnellKey, SALT_BYTES, selectKdf, type KdfBackend } from './kdf.js';
import { sealFrame } from './frame.js';
import { concatBytes, utf8 } from '../bytes.js';
import { openLegacyChunk } from './legacy.js';
import { decodeRequest } from './request.js';
import { IpCache } from './ip-cache.js';
import { ScanPool } from './scan-pool.js';
import { matchDerived, splitFirstBytes, TRIAL_BYTES, type FirstBytes, type MatchKind } from './trial-match.js';
import { UserStore, type SnellUser } from './users.js';

export const SERIAL_THRESHOLD = 16;

export type TrialPath = 'cache' | 'serial' | 'parallel';
export type LegacyVersion = 'legacy-v1' | 'legacy-v2' | 'legacy-v3';
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

export interface TrialOptions {
  kdf?: KdfBackend;
  /** Also recognise v1-v3 streams (costs up to two more opens per user on a miss). Default true. */
  detectLegacy?: boolean;
  cacheCapacity?: number;
  /** Scan workers; defaults to one per core, at least two. */
  workers?: number;
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
  }

  static async create(users: UserStore | readonly SnellUser[], options: TrialOptions = {}): Promise<TrialAuthenticator> {
    const store = users instanceof UserStore ? users : UserStore.fromUsers(users);
    const authenticator = new TrialAuthenticator(store, options.kdf ?? (await selectKdf()), options);
    await authenticator.warmUp();
    return authenticator;
  }

  /**
   * Runs the code paths once and starts the scan workers a store of this size needs, so the
   * reported time of the first capture is what a running server would spend, not start-up.
   */
  private async warmUp(): Promise<void> {
    const psk = utf8.encode('warm-up');
    const salt = new Uint8Array(SALT_BYTES);
    const key = aeadKey(await deriveSnellKey(this.kdf, psk, salt), 'aes-128-gcm');
    const blob = concatBytes(salt, sealFrame(new AeadDirection('aes-128-gcm', key), Uint8Array.of(1)));
    const store = UserStore.fromUsers([{ name: 'warm-up', psk: 'warm-up' }]);
    await this.authenticateIn(store, blob, 'warm-up'); // serial match
    await this.authenticateIn(store, blob, 'warm-up'); // cache hit
    await this.authenticateIn(store, new Uint8Array(TRIAL_BYTES), undefined); // miss
    this.cache.clear();
    if (this.store.size > SERIAL_THRESHOLD) await this.startPool().ready;
  }

  private startPool(): ScanPool {
    this.pool ??= new ScanPool(this.kdf.name, this.options.workers);
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

  /** `blob` is the client's first bytes with any obfs already stripped. */
  async authenticate(blob: Uint8Array, sourceIp?: string): Promise<TrialOutcome> {
    return this.authenticateIn(this.store, blob, sourceIp);
  }

  private async authenticateIn(store: UserStore, blob: Uint8Array, sourceIp: string | undefined): Promise<TrialOutcome> {
    const started = performance.now();
    const micros = (): number => Math.round((performance.now() - started) * 1000);
    if (blob.length < TRIAL_BYTES) return { ok: false, reason: 'truncated', bytes: blob.length, trials: 0, micros: micros() };
    if (store.size === 0) return { ok: false, reason: 'empty-store', trials: 0, micros: micros() };
    const first = splitFirstBytes(blob);
    const detectLegacy = this.options.detectLegacy ?? true;
    let trials = 0;

    const cached = sourceIp === undefined ? undefined : this.cache.get(sourceIp);
    if (cached !== undefined && cached < store.size) {
      trials++;
      if ((await this.tryUser(store, cached, first, false)) === 'v4') {
        return { ok: true, user: store.names[cached]!, index: cached, path: 'cache', trials, micros: micros() };
      }
    }

    const path: TrialPath = store.size <= SERIAL_THRESHOLD ? 'serial' : 'parallel';
    const found = path === 'serial' ? await this.scanSerial(store, first, detectLegacy) : await this.scanParallel(store, first, detectLegacy);
    trials += found.trials;
    if (found.index < 0 || !found.kind) return { ok: false, reason: 'no-match', trials, micros: micros() };
    if (found.kind !== 'v4') {
      const reason = await this.legacyVersion(store, found.index, found.kind, blob);
      return { ok: false, reason, user: store.names[found.index]!, index: found.index, trials, micros: micros() };
    }
    if (sourceIp !== undefined) this.cache.set(sourceIp, found.index);
    return { ok: true, user: store.names[found.index]!, index: found.index, path, trials, micros: micros() };
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  private async tryUser(store: UserStore, index: number, first: FirstBytes, detectLegacy: boolean): Promise<MatchKind | undefined> {
    const out = await deriveSnellKey(this.kdf, store.psk(index), first.salt);
    return matchDerived(out, first, detectLegacy);
  }

  private async scanSerial(store: UserStore, first: FirstBytes, detectLegacy: boolean): Promise<{ index: number; kind?: MatchKind; trials: number }> {
    for (let i = 0; i < store.size; i++) {
      const kind = await this.tryUser(store, i, first, detectLegacy);
      if (kind) return { index: i, kind, trials: i + 1 };
    }
    return { index: -1, trials: store.size };
  }

  private async scanParallel(store: UserStore, first: FirstBytes, detectLegacy: boolean): Promise<{ index: number; kind?: MatchKind; trials: number }> {
    return this.startPool().scan(store, first, detectLegacy);
  }

  /** v1 is the ChaCha20 one; among AES streams, the request's command tells v2 (05) from v3 (01, 06). */
  private async legacyVersion(store: UserStore, index: number, kind: MatchKind, blob: Uint8Array): Promise<LegacyVersion> {
    if (kind === 'legacy-chacha') return 'legacy-v1';
    const out = await deriveSnellKey(this.kdf, store.psk(index), blob.subarray(0, 16));
    try {
      const { payload } = openLegacyChunk(new AeadDirection('aes-128-gcm', aeadKey(out, 'aes-128-gcm')), blob, 16);
      return decodeRequest(payload).request.command === 'connect-v2' ? 'legacy-v2' : 'legacy-v3';
    } catch {
      return 'legacy-v2';
    }
  }
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
