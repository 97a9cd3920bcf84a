/**
 * A scan worker: runs one contiguous slice of the users for a scan, stopping as soon as any
 * worker of the scan has found a match (a shared flag), as OpenSnell's goroutines do.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { adoptCompiledWasmSimd, selectKdf } from '../wire/kdf.js';
import { scanSlice, splitFirstBytes, TRIAL_BYTES, viewFirstBytes } from './trial-match.js';
import { UserStore } from '../user-store.js';
import type { PoolMessage, ScanReply, ScanWorkerData } from './pool.js';

const stores = new Map<number, UserStore>();
const data = workerData as ScanWorkerData;
if (data.wasm) adoptCompiledWasmSimd(data.wasm);
const kdf = await selectKdf(data.kdf);
// One trial of each kind before saying ready, so a scan's timing does not include start-up costs.
const warmUp = UserStore.fromUsers([{ name: 'warm-up', psk: 'warm-up' }]);
await scanSlice(kdf, warmUp, splitFirstBytes(new Uint8Array(TRIAL_BYTES)), 'v4-then-legacy', 0, 1);
parentPort!.postMessage({ ready: true });

parentPort!.on('message', (message: PoolMessage) => {
  if (message.type === 'store') {
    stores.set(message.storeId, UserStore.fromShared(message.pskBytes, message.pskOffsets));
  } else if (message.type === 'forget') {
    stores.delete(message.storeId);
  } else {
    const store = stores.get(message.storeId);
    const reply: Promise<ScanReply> = store
      ? scanSlice(kdf, store, viewFirstBytes(message.first), message.test, message.start, message.end, message.stop).then((r) => ({ scanId: message.scanId, ...r }))
      : Promise.resolve({ scanId: message.scanId, index: -1, trials: 0, error: `store ${message.storeId} not loaded` });
    reply.then(
      (r) => parentPort!.postMessage(r),
      (error: unknown) => parentPort!.postMessage({ scanId: message.scanId, index: -1, trials: 0, error: String(error) } satisfies ScanReply),
    );
  }
});
