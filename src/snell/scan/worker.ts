/**
 * A scan worker: runs its slice of each scan, stopping as soon as any worker of the scan has
 * found a match (a shared flag), as OpenSnell's goroutines do. The slices it holds take turns,
 * a few users each (slice-scan.ts says why), and new scans join between turns.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { adoptCompiledWasmSimd, selectKdf } from '../wire/kdf.js';
import { splitFirstBytes, TRIAL_BYTES, viewFirstBytes } from './trial-match.js';
import { scanSlice, SliceScan } from './slice-scan.js';
import { UserStore } from '../user-store.js';
import type { PoolMessage, ScanReply, ScanWorkerData } from './pool.js';

/** Users a slice tries per turn: ~1 ms of Argon2id, against a few µs to take turns. */
const USERS_PER_TURN = 32;

const stores = new Map<number, UserStore>();
const data = workerData as ScanWorkerData;
if (data.wasm) adoptCompiledWasmSimd(data.wasm);
const kdf = await selectKdf(data.kdf);
// One trial of each kind before saying ready, so a scan's timing does not include start-up costs.
const warmUp = UserStore.fromUsers([{ name: 'warm-up', psk: 'warm-up' }]);
await scanSlice(kdf, warmUp, splitFirstBytes(new Uint8Array(TRIAL_BYTES)), 'v4-then-legacy', 0, 1);
parentPort!.postMessage({ ready: true });

const running: { scanId: number; slice: SliceScan }[] = [];
let turnScheduled = false;

/** One turn: each running slice tries its users; then messages that came meanwhile are taken in. */
async function turn(): Promise<void> {
  for (const entry of [...running]) {
    let reply: ScanReply | undefined;
    try {
      const result = await entry.slice.step(USERS_PER_TURN);
      if (result) reply = { scanId: entry.scanId, ...result };
    } catch (error) {
      reply = { scanId: entry.scanId, index: -1, trials: 0, error: String(error) };
    }
    if (reply) {
      running.splice(running.indexOf(entry), 1);
      parentPort!.postMessage(reply);
    }
  }
  turnScheduled = false;
  scheduleTurn();
}

function scheduleTurn(): void {
  if (turnScheduled || running.length === 0) return;
  turnScheduled = true;
  setImmediate(() => void turn());
}

parentPort!.on('message', (message: PoolMessage) => {
  if (message.type === 'store') {
    stores.set(message.storeId, UserStore.fromShared(message.pskBytes, message.pskOffsets));
  } else if (message.type === 'forget') {
    stores.delete(message.storeId);
  } else {
    const store = stores.get(message.storeId);
    if (!store) {
      parentPort!.postMessage({ scanId: message.scanId, index: -1, trials: 0, error: `store ${message.storeId} not loaded` } satisfies ScanReply);
      return;
    }
    running.push({ scanId: message.scanId, slice: new SliceScan(kdf, store, viewFirstBytes(message.first), message.test, message.start, message.end, message.stop) });
    scheduleTurn();
  }
});
