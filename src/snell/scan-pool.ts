/**
 * A persistent pool of scan workers (one per core, at least two, as OpenSnell uses
 * max(2, GOMAXPROCS)). Each scan splits the users into contiguous slices, one per worker;
 * the first worker to find a match wins and the others stop at their next user.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KdfBackendName } from './kdf.js';
import type { FirstBytes, MatchKind } from './trial-match.js';
import type { UserStore } from './users.js';

export interface StoreMessage {
  type: 'store';
  storeId: number;
  pskBytes: Uint8Array;
  pskOffsets: Uint32Array;
}

export interface ScanRequest extends FirstBytes {
  type: 'scan';
  scanId: number;
  storeId: number;
  start: number;
  end: number;
  detectLegacy: boolean;
  stop: Int32Array;
}

export interface ScanReply {
  scanId: number;
  index: number;
  kind?: MatchKind;
  trials: number;
  error?: string;
}

export interface ScanResult {
  index: number;
  kind?: MatchKind;
  trials: number;
}

function workerFile(): URL {
  const compiled = new URL('./scan-worker.js', import.meta.url);
  // Under vitest this module runs from src/ as TypeScript; the worker then runs from dist/.
  if (existsSync(fileURLToPath(compiled))) return compiled;
  return new URL('../../dist/snell/scan-worker.js', import.meta.url);
}

export class ScanPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, (reply: ScanReply) => void>();
  private readonly storeIds = new WeakMap<UserStore, number>();
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
      const worker = new Worker(file, { workerData: { kdf } });
      started.push(new Promise((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
      }));
      worker.on('message', (reply: ScanReply | { ready: true }) => {
        if ('scanId' in reply) this.pending.get(reply.scanId)?.(reply);
      });
      worker.on('error', (error) => this.fail(error));
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

  private fail(error: Error): void {
    this.failure = error;
    for (const settle of this.pending.values()) settle({ scanId: 0, index: -1, trials: 0, error: error.message });
  }

  private storeId(store: UserStore): number {
    let id = this.storeIds.get(store);
    if (id === undefined) {
      id = this.nextStoreId++;
      this.storeIds.set(store, id);
      const message: StoreMessage = { type: 'store', storeId: id, pskBytes: store.pskBytes, pskOffsets: store.pskOffsets };
      for (const worker of this.workers) worker.postMessage(message);
    }
    return id;
  }

  async scan(store: UserStore, first: FirstBytes, detectLegacy: boolean): Promise<ScanResult> {
    await this.ready;
    if (this.failure) throw this.failure;
    const storeId = this.storeId(store);
    const slices = Math.min(this.workers.length, store.size);
    const chunk = Math.ceil(store.size / slices);
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const scanIds: number[] = [];
    const replies = Array.from({ length: slices }, (_, w) => {
      const scanId = this.nextScanId++;
      scanIds.push(scanId);
      const done = new Promise<ScanReply>((resolve) => this.pending.set(scanId, resolve));
      const request: ScanRequest = {
        type: 'scan', scanId, storeId, ...first, detectLegacy, stop,
        start: w * chunk, end: Math.min(store.size, (w + 1) * chunk),
      };
      this.workers[w]!.postMessage(request);
      return done;
    });
    if (this.active++ === 0) for (const worker of this.workers) worker.ref();
    try {
      const all = await Promise.all(replies);
      const error = all.find((r) => r.error);
      if (error) throw new Error(`scan worker failed: ${error.error}`);
      const winner = all.find((r) => r.index >= 0);
      return { index: winner?.index ?? -1, kind: winner?.kind, trials: all.reduce((sum, r) => sum + r.trials, 0) };
    } finally {
      for (const id of scanIds) this.pending.delete(id);
      if (--this.active === 0) for (const worker of this.workers) worker.unref();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
