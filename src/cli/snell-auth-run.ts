/**
 * `authkit snell-auth`'s work, loaded once the scan workers are booting (snell-auth.ts): the
 * captures, the users file and the trial scan.
 */
import { availableKdfs, parseKdfChoice, selectKdf, type KdfBackend } from '../snell/wire/kdf.js';
import { authenticateCapture, capturesFromPcap, parseCapturesJsonl, type Capture, type CaptureOutcome } from '../snell/captures.js';
import { TrialAuthenticator } from '../snell/model.js';
import type { ScanPool } from '../snell/scan/pool.js';
import { benchTrialAuth, type TrialBenchRow } from '../snell/scan/bench.js';
import { loadUserStore } from '../snell/users.js';
import { parseHex } from '../shared/bytes.js';
import { InputError } from '../shared/errors.js';
import { maxFileSizeLimits, type ReadLimits } from '../shared/files.js';
import { EXIT_FAILED, EXIT_OK, log, out, readBinaryFile, stdoutColors } from './io.js';
import { isIP } from 'node:net';
import type { ObfsChoice } from '../snell/wire/obfs.js';
import { checkFields, lineOf, readRecording } from '../tap/recording.js';
import { replay, replayText, type ReplayTarget } from '../tap/replay.js';
import type { SnellRecord } from '../snell/record.js';

export interface AuthFlags {
  users?: string;
  blob?: string;
  in?: string;
  captures?: string;
  pcap?: string;
  port?: number;
  sourceIp?: string;
  obfs: ObfsChoice;
  legacy: boolean;
  json?: boolean;
  kdf?: string;
  maxFileSize?: string;
  replay?: string;
}

export interface BenchFlags {
  users: number;
  seconds: number;
  json?: boolean;
  kdf?: string;
}

/** --max-file-size as the one file loader's cap. */
function fileLimits(flags: { maxFileSize?: string }): ReadLimits {
  return maxFileSizeLimits(flags.maxFileSize);
}

function readCaptures(flags: AuthFlags): Capture[] {
  const inputs = [flags.blob, flags.in, flags.captures, flags.pcap].filter((v) => v !== undefined).length;
  if (inputs !== 1) throw new InputError('give exactly one capture: --blob HEX, --in FILE, --captures FILE or --pcap FILE --port N');
  if (flags.sourceIp !== undefined && isIP(flags.sourceIp) === 0) throw new InputError(`--source-ip: not an IP address: ${flags.sourceIp}`);
  if (flags.blob !== undefined) return [{ blob: parseHex(flags.blob, '--blob'), sourceIp: flags.sourceIp, source: 'blob' }];
  if (flags.in !== undefined) return [{ blob: readBinaryFile(flags.in, '--in', fileLimits(flags)), sourceIp: flags.sourceIp, source: flags.in }];
  if (flags.captures !== undefined) return parseCapturesJsonl(readBinaryFile(flags.captures, '--captures', fileLimits(flags)).toString('utf8'), flags.captures);
  if (flags.port === undefined) throw new InputError('--pcap needs --port N (the Snell server port)');
  const { captures, withoutSyn, truncated } = capturesFromPcap(readBinaryFile(flags.pcap!, '--pcap', fileLimits(flags)), flags.port, flags.pcap!);
  if (truncated) log(`warning: ${truncated}`);
  if (withoutSyn > 0) log(`note: ${withoutSyn} stream(s) left out: their SYN is not in the capture, so their first bytes may be mid-stream`);
  return captures;
}

/** `pool`: the scan workers, already booting; the authenticator takes them over. */
export async function runSnellAuth(flags: AuthFlags & { users: string }, kdf: KdfBackend, pool: ScanPool): Promise<number> {
  // The scan workers boot while the users file loads and the captures are read.
  const store = loadUserStore(flags.users, fileLimits(flags)).then(({ store, warnings }) => {
    warnings.forEach((w) => log(`warning: ${w}`));
    return store;
  });
  // A replay matches as snell-serve did when it recorded: no legacy diagnosis.
  const starting = TrialAuthenticator.create(store, { kdf, detectLegacy: flags.replay === undefined && flags.legacy, pool });
  if (flags.replay !== undefined) return replaySnell(flags, flags.replay, starting);
  let captures: Capture[];
  try {
    captures = readCaptures(flags);
  } catch (error) {
    await starting.then((auth) => auth.close(), () => undefined);
    throw error;
  }
  const auth = await starting;
  const fromPcap = flags.pcap !== undefined;
  const tally = new Map<string, number>();
  let failed = 0;
  try {
    for (const capture of captures) {
      const outcome = await authenticateCapture(auth, capture, flags.obfs);
      const key = outcome.ok ? outcome.path : outcome.reason;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      if (!outcome.ok) failed++;
      out(flags.json ? jsonLine(outcome, fromPcap ? capture.source : undefined) : humanLine(outcome, capture, captures.length));
    }
  } finally {
    await auth.close();
  }
  if (captures.length > 1) {
    const summary = `${captures.length - failed} of ${captures.length} captures matched (${[...tally].map(([k, n]) => `${k} ${n}`).join(', ')})`;
    if (flags.json) log(summary);
    else out(summary);
  }
  return failed === 0 ? EXIT_OK : EXIT_FAILED;
}

function jsonLine(outcome: CaptureOutcome, stream: string | undefined): string {
  const fields: Record<string, unknown> = outcome.ok
    ? { ok: true, user: outcome.user, index: outcome.index, path: outcome.path, trials: outcome.trials, micros: outcome.micros }
    : { ...outcome };
  if (stream !== undefined) fields.stream = stream;
  return JSON.stringify(fields);
}

function humanLine(outcome: CaptureOutcome, capture: Capture, count: number): string {
  const c = stdoutColors();
  const where = count > 1 || capture.source.includes(':') ? `${capture.source}: ` : '';
  const cost = `${outcome.trials} ${outcome.trials === 1 ? 'trial' : 'trials'}, ${outcome.micros} µs`;
  if (outcome.ok) return `${c.green('✔')} ${where}user ${c.bold(outcome.user)} (index ${outcome.index}), ${outcome.path} path, ${cost}`;
  switch (outcome.reason) {
    case 'truncated':
      return `${c.red('✘')} ${where}truncated: ${outcome.bytes} bytes, a server needs 39 (salt 16 + sealed header 23)`;
    case 'empty-store':
      return `${c.red('✘')} ${where}no users: the store is empty and the server fails closed`;
    case 'no-match':
      return `${c.red('✘')} ${where}no user's PSK opens the first header, ${cost}`;
    case 'obfs-mismatch':
      return `${c.red('✘')} ${where}obfs: ${outcome.detail}`;
    default:
      return `${c.yellow('✘')} ${where}${outcome.reason} stream of user ${c.bold(outcome.user ?? '?')} (index ${outcome.index}): OpenSnell serves v4/v5 only, ${cost}`;
  }
}

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
  const fmt = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1));
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

/**
 * snell-auth --replay: each connection snell-serve recorded, matched again under --users, in the
 * recorded order through one IP cache as the server had it; a connection whose user changes
 * (another user, or none) is listed. The question before rotating PSKs or editing the file.
 */
async function replaySnell(flags: AuthFlags, file: string, starting: Promise<TrialAuthenticator>): Promise<number> {
  let records: SnellRecord[];
  try {
    records = readRecording<SnellRecord>(file, 'snell', fileLimits(flags));
    for (const record of records) {
      checkFields(record, file, [['source', 'string'], ['user', 'string?'], ['firstBytes', 'string']]);
      if (!/^([0-9a-f]{2})+$/i.test(record.firstBytes)) throw new InputError(`${file}:${lineOf(record)}: "firstBytes" must be hex`);
    }
  } catch (error) {
    await starting.then((auth) => auth.close(), () => undefined);
    throw error;
  }
  const auth = await starting;
  const target: ReplayTarget<SnellRecord> = {
    recorded: (record) => record.user ?? 'no user',
    describe: (record) => record.source,
    async send(record) {
      const ip = record.source.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      const outcome = await auth.authenticate(Buffer.from(record.firstBytes, 'hex'), isIP(ip) ? ip : undefined);
      return { verdict: outcome.ok ? outcome.user : 'no user', detail: outcome.ok ? `${outcome.path}, ${outcome.trials} trials` : `${outcome.reason}, ${outcome.trials} trials` };
    },
  };
  try {
    // No timing to keep: the question is who, not when.
    const report = await replay(records, target, Infinity);
    if (flags.json) out(JSON.stringify(report));
    else out(replayText(report, file, 'connections'));
    return report.changed === 0 ? EXIT_OK : EXIT_FAILED;
  } finally {
    await auth.close();
  }
}
