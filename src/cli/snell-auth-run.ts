/**
 * `authkit snell-auth`'s work, loaded once the scan pool is booting (snell-auth.ts): the
 * captures, the users file and the trial scan. A replay (snell-auth-replay.ts) and the bench
 * (snell-auth-bench.ts) load only when asked for: start-up to the first trial is measured.
 */
import type { KdfBackend } from '../snell/wire/kdf.js';
import { authenticateCapture, capturesFromPcap, parseCapturesJsonl, type Capture, type CaptureOutcome } from '../snell/captures.js';
import { TrialAuthenticator } from '../snell/model.js';
import type { ScanPool } from '../snell/scan/pool.js';
import { loadUserStore } from '../snell/users.js';
import { parseHex } from '../shared/bytes.js';
import { InputError } from '../shared/errors.js';
import { maxFileSizeLimits, type ReadLimits } from '../shared/files.js';
import { EXIT_FAILED, EXIT_OK, log, out, readBinaryFile, stdoutColors } from './io.js';
import { isIP } from 'node:net';
import type { ObfsChoice } from '../snell/wire/obfs.js';

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
  if (flags.replay !== undefined) return (await import('./snell-auth-replay.js')).replaySnell({ json: flags.json, limits: fileLimits(flags) }, flags.replay, starting);
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

