/** `authkit snell-auth bench`: trial authentication measured per KDF backend, on synthetic users. */
import { availableKdfs, parseKdfChoice, selectKdf } from '../snell/wire/kdf.js';
import { benchTrialAuth, type TrialBenchRow } from '../snell/scan/bench.js';
import { EXIT_OK, log, out } from './io.js';
import type { BenchFlags } from './snell-auth-run.js';
import { groupDigits } from '../shared/text.js';

export async function runSnellAuthBench(flags: BenchFlags): Promise<number> {
  const kdfs = flags.kdf === undefined ? await availableKdfs() : [await selectKdf(parseKdfChoice(flags.kdf))];
  const rows = await benchTrialAuth({ users: flags.users, kdfs, seconds: flags.seconds, progress: (m) => log(`measuring ${m}`) });
  if (flags.json) {
    out(JSON.stringify(rows));
    return EXIT_OK;
  }
  out(benchTable(rows));
  return EXIT_OK;
}

function benchTable(rows: TrialBenchRow[]): string {
  const fmt = (n: number): string => (n >= 100 ? groupDigits(n) : n.toFixed(1));
  const header = ['kdf', 'derivations/s (1 thread)', `cold: user-trials/s`, 'cold: ms/conn', 'serial conn/s', 'parallel conn/s', 'cache-hit conn/s'];
  const body = rows.map((r) => [
    r.kdf, fmt(r.derivationsPerSec), fmt(r.cold.userTrialsPerSec), r.cold.msPerConnection.toFixed(2),
    fmt(r.serial.connectionsPerSec), r.parallel ? fmt(r.parallel.connectionsPerSec) : 'n/a', fmt(r.cacheHit.connectionsPerSec),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const users = rows[0] ? `${rows[0].users} users (cold and parallel), ${rows[0].serial.users} (serial); a cache hit costs ${rows[0].cacheHit.trials} derivation` : '';
  return [line(header), ...body.map(line), users].join('\n');
}
