/**
 * A persistent pool of scan workers (one per core, at least two, as OpenSnell uses
 * max(2, GOMAXPROCS)). Each scan splits the users into contiguous slices, one per worker;
 * the first worker to report a match wins and the others stop at their next user.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compiledWasmSimd, type KdfBackendName } from '../wire/kdf.js';
import type { FirstBytes, LegacyFind, ScanTest, SliceResult } from './trial-match.js';
import type { UserStore } from '../user-store.js';

/** Snapshots the workers keep; a panel swapping users keeps the old one while scans finish. */
const STORES_KEPT = 4;

export type PoolMessage =
  | { type: 'store'; storeId: number; pskBytes: Uint8Array; pskOffsets: Uint32Array }
  | { type: 'forget'; storeId: number }
  | ScanRequest;

export interface ScanWorkerData {
  kdf: KdfBackendName;
  /** The main thread's compiled libargon2 module, when it uses wasm-simd. */
  wasm?: object;
}

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

function workerFile(): URL {
  const compiled = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return compiled;
  // Under vitest this module runs from src/ as TypeScript, and the worker runs compiled from
  // dist/: refuse a dist/ older than the sources rather than test stale code.
  const worker = new URL('../../../dist/snell/scan/worker.js', import.meta.url);
  const src = fileURLToPath(new URL('../../', import.meta.url));
  const newestSource = Math.max(...readdirSync(src, { recursive: true, encoding: 'utf8' }).map((f) => statSync(`${src}/${f}`).mtimeMs));
  if (!existsSync(fileURLToPath(worker)) || statSync(fileURLToPath(worker)).mtimeMs < newestSource) {
    throw new Error('dist/ is older than src/: run `npm run build` (npm test does)');
  }
  return worker;
}

export class ScanPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, (reply: ScanReply) => void>();
  private readonly storeIds = new WeakMap<UserStore, number>();
  /** Store ids the workers hold, oldest first. */
  private readonly loaded: number[] = [];
  private nextStoreId = 1;
  private nextScanId = 1;
  private active = 0;
  private failure: Error | undefined;
  /** Settles when every worker has loaded its KDF and run one trial. */
  readonly ready: Promise<void>;

  constructor(kdf: KdfBackendName, size = Math.max(2, availableParallelism())) {
    const file = workerFile();
    const started: Promise<void>[] = [];
    this.workers = Array.from({ length: size }, () => {
      const worker = new Worker(file, { workerData: { kdf, wasm: kdf === 'wasm-simd' ? compiledWasmSimd() : undefined } satisfies ScanWorkerData });
      started.push(new Promise((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      }));
      worker.on('message', (reply: ScanReply | { ready: true }) => {
        if ('scanId' in reply) this.pending.get(reply.scanId)?.(reply);
      });
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => this.fail(new Error(`scan worker exited (code ${code})`)));
      return worker;
    });
    this.ready = Promise.all(started).then(() => {
      if (this.active === 0) for (const worker of this.workers) worker.unref();
    });
    // A worker that fails to start rejects the next scan; until then the rejection is not unhandled.
    this.ready.catch(() => undefined);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Settles every pending scan with an error; later scans reject at once. */
  private fail(error: Error): void {
    this.failure ??= error;
    for (const [scanId, settle] of this.pending) settle({ scanId, index: -1, trials: 0, error: error.message });
  }

  private storeId(store: UserStore): number {
    let id = this.storeIds.get(store);
    if (id === undefined) {
      id = this.nextStoreId++;
      this.storeIds.set(store, id);
    }
    if (!this.loaded.includes(id)) {
      this.post({ type: 'store', storeId: id, pskBytes: store.pskBytes, pskOffsets: store.pskOffsets });
      this.loaded.push(id);
      while (this.loaded.length > STORES_KEPT) this.post({ type: 'forget', storeId: this.loaded.shift()! });
    }
    return id;
  }

  private post(message: PoolMessage): void {
    for (const worker of this.workers) worker.postMessage(message);
  }

  async scan(store: UserStore, first: FirstBytes, test: ScanTest): Promise<SliceResult> {
    await this.ready;
    if (this.failure) throw this.failure;
    const storeId = this.storeId(store);
    const slices = Math.min(this.workers.length, store.size);
    const chunk = Math.ceil(store.size / slices);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const scanIds: number[] = [];
    // Replies in the order they arrive: with duplicate PSKs, the first worker to report wins.
    const arrived: ScanReply[] = [];
    const replies = Array.from({ length: slices }, (_, w) => {
      const scanId = this.nextScanId++;
      scanIds.push(scanId);
      const done = new Promise<void>((resolve) => {
        this.pending.set(scanId, (reply) => {
          arrived.push(reply);
          resolve();
        });
      });
      const request: ScanRequest = {
        type: 'scan', scanId, storeId, first: first.bytes, test, stop,
        start: w * chunk, end: Math.min(store.size, (w + 1) * chunk),
      };
      this.workers[w]!.postMessage(request);
      return done;
    });
    if (this.active++ === 0) for (const worker of this.workers) worker.ref();
    try {
      await Promise.all(replies);
      const error = arrived.find((r) => r.error);
      if (error) throw new Error(`scan worker failed: ${error.error}`);
      return mergeSlices(arrived);
    } finally {
      for (const id of scanIds) this.pending.delete(id);
      if (--this.active === 0) for (const worker of this.workers) worker.unref();
    }
  }

  async close(): Promise<void> {
    this.fail(new Error('scan pool closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * One scan's result from its slices: the first v4 match to arrive wins (with duplicate PSKs,
 * as in OpenSnell, whichever worker got there first); the v4 part ended when the last slice's
 * did; a legacy find, after a miss, is the one earliest in the file.
 */
function mergeSlices(arrived: readonly ScanReply[]): SliceResult {
  const winner = arrived.find((r) => r.index >= 0);
  const trials = arrived.reduce((sum, r) => sum + r.trials, 0);
  const v4EndedAt = Math.max(...arrived.map((r) => r.v4EndedAt ?? 0));
  if (winner) return { index: winner.index, kind: winner.kind, derived: winner.derived, trials, v4EndedAt };
  let legacy: LegacyFind | undefined;
  for (const r of arrived) if (r.legacy && (!legacy || r.legacy.index < legacy.index)) legacy = r.legacy;
  return { index: -1, trials, v4EndedAt, legacy };
}
