/**
 * A scan worker: derives and tests one contiguous slice of the users for a scan, stopping as
 * soon as any worker of the scan has found a match (a shared flag), as OpenSnell's goroutines do.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectKdf, type KdfBackendName } from './kdf.js';
import { matchDerived, type FirstBytes } from './trial-match.js';
import { UserStore } from './users.js';
import type { ScanReply, ScanRequest, StoreMessage } from './scan-pool.js';

const MAX_STORES = 4;
const stores = new Map<number, UserStore>();
const kdf = await selectKdf((workerData as { kdf: KdfBackendName }).kdf);
// One trial before saying ready, so a scan's timing does not include start-up costs.
matchDerived(await kdf.derive(new Uint8Array(1), new Uint8Array(16)), { salt: new Uint8Array(16), header: new Uint8Array(23), legacyLength: new Uint8Array(18) }, true);
parentPort!.postMessage({ ready: true });

async function scan(request: ScanRequest): Promise<ScanReply> {
  const store = stores.get(request.storeId);
  if (!store) return { scanId: request.scanId, index: -1, trials: 0, error: `store ${request.storeId} not loaded` };
  const first: FirstBytes = { salt: request.salt, header: request.header, legacyLength: request.legacyLength };
  const stop = request.stop;
  let trials = 0;
  for (let i = request.start; i < request.end; i++) {
    if (Atomics.load(stop, 0) !== 0) break;
    const out = kdf.deriveSync ? kdf.deriveSync(store.psk(i), first.salt) : await kdf.derive(store.psk(i), first.salt);
    trials++;
    const kind = matchDerived(out, first, request.detectLegacy);
    if (kind) {
      Atomics.store(stop, 0, 1);
      return { scanId: request.scanId, index: i, kind, trials };
    }
  }
  return { scanId: request.scanId, index: -1, trials };
}

parentPort!.on('message', (message: StoreMessage | ScanRequest) => {
  if (message.type === 'store') {
    stores.set(message.storeId, UserStore.fromShared(message.pskBytes, message.pskOffsets));
    while (stores.size > MAX_STORES) stores.delete(stores.keys().next().value!);
    return;
  }
  scan(message).then(
    (reply) => parentPort!.postMessage(reply),
    (error: unknown) => parentPort!.postMessage({ scanId: message.scanId, index: -1, trials: 0, error: String(error) } satisfies ScanReply),
  );
});
