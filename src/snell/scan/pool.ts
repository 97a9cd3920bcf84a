/**
 * A persistent pool of scanners: scan workers, one per core, at least two (as OpenSnell uses
 * max(2, GOMAXPROCS)), one of which may be the calling thread itself (`inThread`: snell-auth,
 * which has nothing else to do meanwhile and then boots one worker fewer). Each scan splits the
 * users into contiguous slices, one per scanner; the first to report a match wins and the
 * others stop at their next user.
 */
import { compiledWasmSimd, type KdfBackend, type KdfBackendName } from '../wire/kdf.js';
import type { FirstBytes, LegacyFind, ScanTest, SliceResult } from './trial-match.js';
import type { UserStore } from '../user-store.js';
import { defaultScanners, takeWorker } from './workers.js';
import { ScanHost, warmUpScan, type PoolMessage, type ScanReply, type ScanRequest, type WorkerMessage } from './scan-host.js';

/** Snapshots the workers keep; a panel swapping users keeps the old one while scans finish. */
const STORES_KEPT = 4;

export interface ScanPoolOptions {
  /** Scanners in all, this thread included when it scans: one per core by default, at least two. */
  size?: number;
  /** This thread is one of the scanners, with this KDF: for a caller that only waits for scans. */
  inThread?: KdfBackend;
}

/** What the pool needs of a scanner, a worker or this thread. */
interface Scanner {
  postMessage(message: PoolMessage): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<unknown>;
}

/**
 * This thread as a scanner: the same host a worker runs, its messages taken one event-loop turn
 * later as a worker's would be. The first bytes are copied, as postMessage would; the shared
 * stop flag and the store's arrays are shared, as they are with a worker.
 */
class InThreadScanner implements Scanner {
  private readonly host: ScanHost;

  constructor(kdf: KdfBackend, reply: (reply: ScanReply) => void) {
    this.host = new ScanHost(kdf, (r) => setImmediate(() => reply(r)));
  }

  postMessage(message: PoolMessage): void {
    const own = message.type === 'scan' ? { ...message, first: message.first.slice() } : message;
    setImmediate(() => this.host.handle(own));
  }

  ref(): void {}
  unref(): void {}

  async terminate(): Promise<void> {
    this.host.stop();
  }
}

export class ScanPool {
  private readonly scanners: Scanner[];
  private readonly pending = new Map<number, (reply: ScanReply) => void>();
  private readonly storeIds = new WeakMap<UserStore, number>();
  /** Store ids the workers hold, oldest first. */
  private readonly loaded: number[] = [];
  private nextStoreId = 1;
  private nextScanId = 1;
  private active = 0;
  private failure: Error | undefined;
  /** Settles when every scanner has loaded its KDF and run one trial. */
  readonly ready: Promise<void>;

  constructor(kdf: KdfBackendName, options: ScanPoolOptions = {}) {
    const size = Math.max(1, options.size ?? defaultScanners());
    const started: Promise<void>[] = [];
    const onReply = (reply: ScanReply): void => this.pending.get(reply.scanId)?.(reply);
    const workers = Array.from({ length: options.inThread ? size - 1 : size }, () => {
      const { worker, failed } = takeWorker();
      // Ready at its first message; failed at an error or an exit first (terminated while it boots).
      started.push(new Promise((resolve, reject) => {
        if (failed) reject(failed);
        worker.once('message', () => resolve());
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`scan worker exited (code ${code})`)));
      }));
      worker.on('message', (reply: ScanReply | { ready: true }) => {
        if ('scanId' in reply) onReply(reply);
      });
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => this.fail(new Error(`scan worker exited (code ${code})`)));
      if (failed) this.fail(failed);
      worker.postMessage({ type: 'kdf', kdf, wasm: kdf === 'wasm-simd' ? compiledWasmSimd() : undefined } satisfies WorkerMessage);
      return worker;
    });
    this.scanners = options.inThread ? [...workers, new InThreadScanner(options.inThread, onReply)] : workers;
    if (options.inThread) started.push(warmUpScan(options.inThread));
    this.ready = holdingOpen(Promise.all(started).then(() => undefined));
    // Ready or failed, an idle pool holds nothing open. A worker that fails to start rejects the
    // next scan; until then the rejection is not unhandled.
    const letGo = (): void => {
      if (this.active === 0) for (const scanner of this.scanners) scanner.unref();
    };
    this.ready.then(letGo, letGo);
  }

  get size(): number {
    return this.scanners.length;
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
    for (const scanner of this.scanners) scanner.postMessage(message);
  }

  async scan(store: UserStore, first: FirstBytes, test: ScanTest): Promise<SliceResult> {
    await this.ready;
    if (this.failure) throw this.failure;
    const storeId = this.storeId(store);
    const slices = Math.min(this.scanners.length, store.size);
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
      this.scanners[w]!.postMessage(request);
      return done;
    });
    if (this.active++ === 0) for (const scanner of this.scanners) scanner.ref();
    try {
      await Promise.all(replies);
      const error = arrived.find((r) => r.error);
      if (error) throw new Error(`scan worker failed: ${error.error}`);
      return mergeSlices(arrived);
    } finally {
      for (const id of scanIds) this.pending.delete(id);
      if (--this.active === 0) for (const scanner of this.scanners) scanner.unref();
    }
  }

  async close(): Promise<void> {
    this.fail(new Error('scan pool closed'));
    await holdingOpen(Promise.all(this.scanners.map((s) => s.terminate())));
  }
}

/**
 * `work`, with the event loop held open until it settles. A worker that is booting or being
 * terminated does not reliably hold it: a process ended while its pool was closing, before
 * close() returned (a command's exit code with it), about once in 30 runs of snell-auth with a
 * missing users file.
 */
function holdingOpen<T>(work: Promise<T>): Promise<T> {
  const holding = setInterval(() => undefined, 60_000);
  return work.finally(() => clearInterval(holding));
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
