/**
 * The scanning side of the pool, wherever it runs: in a scan worker (worker.ts), or in the
 * calling thread as one of the pool's scanners (snell-auth: one fewer worker to boot). The
 * slices it holds take turns, a few users each (slice-scan.ts says why), and new scans join
 * between turns.
 */
import type { KdfBackend, KdfBackendName } from '../wire/kdf.js';
import { splitFirstBytes, TRIAL_BYTES, viewFirstBytes, type ScanTest, type SliceResult } from './trial-match.js';
import { scanSlice, SliceScan } from './slice-scan.js';
import { UserStore } from '../user-store.js';

/** What a scanner is sent by the pool (pool.ts), and what it replies. */
export type PoolMessage =
  | { type: 'store'; storeId: number; pskBytes: Uint8Array; pskOffsets: Uint32Array }
  | { type: 'forget'; storeId: number }
  | ScanRequest;

/** What a worker is sent: first the KDF (a worker boots without one), then the pool's messages. */
export type WorkerMessage =
  | { type: 'kdf'; kdf: KdfBackendName; /** The main thread's compiled libargon2, when it uses wasm-simd. */ wasm?: object }
  | PoolMessage;

/**
 * One slice of a scan. The first bytes go as one array (FirstBytes.bytes), not three: each
 * typed array is cloned on its own, and three made a message cost ~15 µs instead of ~5.
 */
export interface ScanRequest {
  type: 'scan';
  first: Uint8Array;
  scanId: number;
  storeId: number;
  test: ScanTest;
  start: number;
  end: number;
  stop: Int32Array;
}

export interface ScanReply extends SliceResult {
  scanId: number;
  error?: string;
}

/** Users a slice tries per turn: ~1 ms of Argon2id, against a few µs to take turns. */
const USERS_PER_TURN = 32;

export class ScanHost {
  private readonly stores = new Map<number, UserStore>();
  private readonly running: { scanId: number; slice: SliceScan }[] = [];
  private turnScheduled = false;
  private stopped = false;

  constructor(
    private readonly kdf: KdfBackend,
    private readonly reply: (reply: ScanReply) => void,
  ) {}

  handle(message: PoolMessage): void {
    if (this.stopped) return;
    if (message.type === 'store') {
      this.stores.set(message.storeId, UserStore.fromShared(message.pskBytes, message.pskOffsets));
    } else if (message.type === 'forget') {
      this.stores.delete(message.storeId);
    } else {
      const store = this.stores.get(message.storeId);
      if (!store) {
        this.reply({ scanId: message.scanId, index: -1, trials: 0, error: `store ${message.storeId} not loaded` });
        return;
      }
      const slice = new SliceScan(this.kdf, store, viewFirstBytes(message.first), message.test, message.start, message.end, message.stop);
      this.running.push({ scanId: message.scanId, slice });
      this.scheduleTurn();
    }
  }

  /** Drops what is running; nothing more is replied. */
  stop(): void {
    this.stopped = true;
    this.running.length = 0;
  }

  /** One turn: each running slice tries its users; then messages that came meanwhile are taken in. */
  private async turn(): Promise<void> {
    for (const entry of [...this.running]) {
      let reply: ScanReply | undefined;
      try {
        const result = await entry.slice.step(USERS_PER_TURN);
        if (result) reply = { scanId: entry.scanId, ...result };
      } catch (error) {
        reply = { scanId: entry.scanId, index: -1, trials: 0, error: String(error) };
      }
      if (reply && !this.stopped) {
        this.running.splice(this.running.indexOf(entry), 1);
        this.reply(reply);
      }
    }
    this.turnScheduled = false;
    this.scheduleTurn();
  }

  private scheduleTurn(): void {
    if (this.turnScheduled || this.running.length === 0) return;
    this.turnScheduled = true;
    setImmediate(() => void this.turn());
  }
}

/** One trial of each kind, so that no scan's timing includes this thread's first-use costs. */
export async function warmUpScan(kdf: KdfBackend): Promise<void> {
  const warmUp = UserStore.fromUsers([{ name: 'warm-up', psk: 'warm-up' }]);
  await scanSlice(kdf, warmUp, splitFirstBytes(new Uint8Array(TRIAL_BYTES)), 'v4-then-legacy', 0, 1);
}
