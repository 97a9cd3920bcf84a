/** `authkit snell-serve`: a multi-user (or single-PSK) Snell server that behaves like OpenSnell's. */
import { writeFileSync } from 'node:fs';
import { droppedRecordsLine, recordingBoundOptions, recordingBounds, secretOptions, type RecordingFlags } from './options.js';
import { Command } from 'commander';
import { parseHostPort } from '../shared/listen.js';
import { parseKdfChoice, selectKdf } from '../snell/wire/kdf.js';
import { startSnellServer } from '../snell/server/server.js';
import { type SnellServerStats } from '../snell/server/stats.js';
import { defaultAuthQueue, defaultMaxPendingAuth } from '../snell/server/auth-limiter.js';
import { parseTargetPolicy } from '../snell/server/targets.js';
import { loadUserStore, parseUserStoreBytes } from '../snell/users.js';
import type { ObfsMode } from '../snell/wire/obfs.js';
import { watchSnapshotFile } from '../shared/watch.js';
import { maxFileSizeLimits } from '../shared/files.js';
import { cannotWrite, InputError } from '../shared/errors.js';
import { RecordingWriter } from '../tap/recording.js';
import { snellRecord } from '../snell/record.js';
import { choiceOption, EXIT_OK, exitsWith, integerOption, log, out, readSecret, secretOnCommandLine, stopRequested, timeParser, type ServerHooks } from './io.js';

interface ServeFlags extends RecordingFlags {
  listen?: string;
  users?: string;
  psk?: string;
  pskFile?: string;
  pskEnv?: string;
  obfs: ObfsMode;
  udp?: boolean;
  quic?: boolean;
  echo?: boolean;
  allowTarget: string[];
  authorizeUrl?: string;
  idleTimeout: number;
  ipCache: boolean;
  maxPendingAuth?: number;
  authQueue?: number;
  ipv6: boolean;
  statsJson?: string;
  quiet?: boolean;
  maxFileSize?: string;
  kdf?: string;
}

/** For embedding and tests: the port once listening. */
export type SnellServeHooks = ServerHooks<number>;

export function snellServeCommand(hooks: SnellServeHooks = {}): Command {
  return recordingBoundOptions(secretOptions(new Command('snell-serve')
    .description('run a multi-user Snell server (OpenSnell\'s behaviour: trial authentication, IP cache, 50 ms no-match delay)')
    .option('--listen <host:port>', 'where to listen, e.g. 127.0.0.1:8388 (port 0: any free port)')
    .option('--users <file>', 'users file (multi-user), reloaded as a whole when it changes'), 'psk', 'single-user: the PSK')
    .option('--obfs <mode>', 'off, http or tls', choiceOption(['off', 'http', 'tls'] as const), 'off')
    .option('--udp', 'allow UDP-over-TCP')
    .option('--quic', 'v5 QUIC envelopes on the same port over UDP (no delay on a miss, as OpenSnell)')
    .option('--echo', 'answer CONNECT (and UDP) to targets not allowed below with an in-process echo')
    .option('--allow-target <target>', 'let tunnels reach HOST:PORT or a CIDR[:PORT] (repeatable); anything else gets an error reply', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--authorize-url <url>', 'before each CONNECT, POST {"user","remote","target"} here; a non-2xx answer refuses it')
    .option('--no-ipv6', 'dial targets over IPv4 only, as OpenSnell with ipv6 = false (its refusals then read "dial tcp4 ...")')
    .option('--no-ip-cache', 'no client-IP cache: every connection is trial-authenticated from scratch (to measure the cold path)')
    .option('--max-pending-auth <n>', `trial authentications (scans past the IP cache) running at once (default ${defaultMaxPendingAuth()}: 2 per core)`, integerOption(1, 100_000))
    .option('--auth-queue <n>', `connections waiting for a scan; past it they are closed as busy (default ${defaultAuthQueue()}: 16 per core)`, integerOption(0, 1_000_000))
    .option('--idle-timeout <duration>', 'close connections idle this long: a duration like 5m, or seconds', timeParser('s', 1, 86_400), 300)
    .option('--stats-json <file>', 'write per-user totals here on exit')
    .option('--record <file>', '--users: one JSON line per connection (source, matched user or miss, path, trials, micros, the first bytes) for snell-auth --replay')
    .option('--quiet', 'no line per connection')
    .option('--max-file-size <size>', 'refuse a users file (at start or on reload) larger than this (default 1G; e.g. 4G)')
    .option('--kdf <backend>', 'Argon2id backend (or AUTHKIT_KDF)'))
    .addHelpText('after', '\nExample:\n  authkit snell-serve --listen 127.0.0.1:8388 --users fixtures/snell/users.txt --echo --obfs http')
    .action(exitsWith((flags: ServeFlags) => snellServe(flags, hooks)));
}

async function snellServe(flags: ServeFlags, hooks: SnellServeHooks): Promise<number> {
  if (flags.listen === undefined) throw new InputError('--listen HOST:PORT is required');
  const listen = parseHostPort(flags.listen);
  const psk = readSecret({ value: flags.psk, file: flags.pskFile, env: flags.pskEnv }, 'psk');
  if ((psk === undefined) === (flags.users === undefined)) throw new InputError('give either --users FILE (multi-user) or a PSK (--psk-env, --psk-file, --psk)');
  if (psk !== undefined && (flags.maxPendingAuth !== undefined || flags.authQueue !== undefined)) {
    throw new InputError(`${flags.maxPendingAuth !== undefined ? '--max-pending-auth' : '--auth-queue'} applies to --users: a single PSK has no trial authentication to bound`);
  }
  if (flags.record !== undefined && flags.users === undefined) throw new InputError('--record needs --users: a single PSK has no trial authentication to record');
  const bounds = recordingBounds(flags);
  const targets = parseTargetPolicy(flags.allowTarget, flags.echo ?? false);
  if (flags.authorizeUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(flags.authorizeUrl);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new InputError(`--authorize-url: expected an http:// or https:// URL, got "${flags.authorizeUrl}"`);
  }
  const kdf = await selectKdf(flags.kdf === undefined ? undefined : parseKdfChoice(flags.kdf));
  const limits = maxFileSizeLimits(flags.maxFileSize);
  let users;
  let digest = '';
  if (flags.users !== undefined) {
    const parsed = await loadUserStore(flags.users, limits, true);
    parsed.warnings.forEach((w) => log(`warning: ${w}`));
    users = parsed.store;
    digest = parsed.digest!;
  }
  if (flags.psk !== undefined) log(`note: ${secretOnCommandLine('psk')}`);
  const recording = flags.record === undefined ? undefined : new RecordingWriter(flags.record, '--record', (error) => log(`snell-serve: cannot write ${flags.record} (${error.message}): recording stopped, serving goes on`), bounds);
  const recordingStarted = performance.now();
  const server = await startSnellServer({
    onAuthenticated: recording && ((entry) => recording.write(snellRecord(entry, new Date(), performance.now() - recordingStarted))),
    host: listen.host, port: listen.port, users, psk, obfs: flags.obfs, udp: flags.udp ?? false, quic: flags.quic ?? false, targets,
    authorizeUrl: flags.authorizeUrl, ipCache: flags.ipCache, maxPendingAuth: flags.maxPendingAuth, authQueue: flags.authQueue, ipv6: flags.ipv6, idleTimeoutMs: flags.idleTimeout * 1000, kdf, log: flags.quiet ? undefined : log,
  });
  const watcher = flags.users === undefined ? undefined : watchSnapshotFile(flags.users, {
    what: 'users file', noun: 'users', current: users!, digest, count: (store) => store.size,
    parse: (bytes) => {
      // The same strict decoding as at start: a bad byte is refused with its line, never U+FFFD.
      const parsed = parseUserStoreBytes(bytes, flags.users!);
      return { snapshot: parsed.store, warnings: parsed.warnings };
    },
    onReload: (next) => server.replaceUsers(next),
    log, warning: (w) => `warning: ${w}`, pollMs: hooks.pollMs, maxBytes: limits.maxBytes,
  });
  const who = users ? `${users.size} users from ${flags.users}` : 'one PSK';
  log(`snell-serve: ${who}, obfs ${flags.obfs}, udp ${flags.udp ? 'on' : 'off'}, quic ${flags.quic ? 'on' : 'off'}${flags.ipv6 ? '' : ', ipv6 off'}, tunnels to ${targets.describe()}, listening on ${server.address.address}:${server.address.port}`);
  hooks.onListening?.(server.address.port);
  await stopRequested(hooks.signal);
  log('snell-serve: stopping');
  watcher?.close();
  const stats = server.stats();
  await server.close();
  await recording?.close();
  if (recording && recording.dropped > 0) log(droppedRecordsLine('snell-serve', recording));
  out(renderTotals(stats));
  if (flags.statsJson) {
    try {
      writeFileSync(flags.statsJson, `${JSON.stringify(stats, null, 2)}\n`);
    } catch (error) {
      throw cannotWrite('--stats-json', flags.statsJson, error);
    }
  }
  return EXIT_OK;
}

function renderTotals(stats: SnellServerStats): string {
  const lines = [`connections ${stats.accepted}: ${stats.authenticated} authenticated, ${stats.rejected} rejected, ${stats.busy} busy`];
  for (const [user, t] of Object.entries(stats.users).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`  ${user}: ${t.connections} connections, ${t.bytesIn} bytes in, ${t.bytesOut} bytes out${t.errors ? `, ${t.errors} errors` : ''}`);
  }
  return lines.join('\n');
}
