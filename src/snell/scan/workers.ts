/**
 * Starting scan workers, and starting them early. A worker takes ~60 ms of a core to boot, and
 * snell-auth is measured from its spawn to its first trial: `bin/authkit.js` boots its worker
 * (prestartScanWorkers) before the command line is even parsed, and the pool that snell-auth
 * then makes takes it over. This module imports nothing of the project, so that the early start
 * loads next to nothing before it.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Scanners a pool has by default: one per core, at least two (OpenSnell's max(2, GOMAXPROCS)). */
export function defaultScanners(): number {
  return Math.max(2, availableParallelism());
}

/** A worker started before any pool, and how it ended if it did before a pool took it. */
export interface BootingWorker {
  worker: Worker;
  failed?: Error;
}

const prestarted: BootingWorker[] = [];

/**
 * Boots `count` scan workers now, for the next pool to take over. They hold nothing open:
 * a command that ends before making a pool (bad flags, --help) exits as it would without them.
 */
export function prestartScanWorkers(count: number): void {
  for (let i = 0; i < count; i++) prestarted.push(bootWorker());
}

/** A booting worker: a prestarted one when there is one left, else a new one. */
export function takeWorker(): BootingWorker {
  return prestarted.shift() ?? bootWorker();
}

function bootWorker(): BootingWorker {
  const booting: BootingWorker = { worker: new Worker(workerFile()) };
  booting.worker.unref();
  booting.worker.once('error', (error) => (booting.failed ??= error));
  booting.worker.once('exit', (code) => (booting.failed ??= new Error(`scan worker exited (code ${code})`)));
  return booting;
}

function workerFile(): URL {
  if (!import.meta.url.endsWith('.ts')) {
    // Next to the bundled command line (dist/bundle/, rolldown.config.mjs): the worker as one
    // file; next to tsc's output (dist/snell/scan/, the library): its module.
    for (const name of ['./scan-worker.cjs', './worker.js']) {
      const file = new URL(name, import.meta.url);
      if (existsSync(fileURLToPath(file))) return file;
    }
    throw new Error(`no scan worker next to ${fileURLToPath(import.meta.url)}: run \`npm run build\``);
  }
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
