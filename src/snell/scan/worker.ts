/**
 * A scan worker: runs its slices of each scan (scan-host.ts), stopping as soon as any scanner
 * of the scan has found a match (a shared flag), as OpenSnell's goroutines do. It boots without
 * a KDF, so it can be started before the command has chosen one (workers.ts); the pool's first
 * message names it.
 */
import { parentPort } from 'node:worker_threads';
import { adoptCompiledWasmSimd, selectKdf } from '../wire/kdf.js';
import { ScanHost, warmUpScan, type PoolMessage, type WorkerMessage } from './scan-host.js';

let host: ScanHost | undefined;

async function start(message: Extract<WorkerMessage, { type: 'kdf' }>): Promise<void> {
  if (message.wasm) adoptCompiledWasmSimd(message.wasm);
  const kdf = await selectKdf(message.kdf);
  await warmUpScan(kdf);
  host = new ScanHost(kdf, (reply) => parentPort!.postMessage(reply));
  parentPort!.postMessage({ ready: true });
}

parentPort!.on('message', (message: WorkerMessage) => {
  if (message.type === 'kdf') {
    // A KDF that cannot load fails the worker (an uncaught error): the pool reports it.
    start(message).catch((error: unknown) => setImmediate(() => {
      throw error;
    }));
    return;
  }
  // The pool sends nothing else before this worker said it is ready.
  host!.handle(message satisfies PoolMessage);
});
