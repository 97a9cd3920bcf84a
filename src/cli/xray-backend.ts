/** `authkit xray-backend`: a stand-in ExtAuth / Hysteria 2 auth backend with sessions, an admin API and fault injection. */
import { secretOptions } from './options.js';
import { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { parseHostPort } from '../shared/listen.js';
import { DIALECTS, dialectNamed } from '../xray/wire/dialects/index.js';
import { startXrayBackend, type XrayBackend, type XrayBackendOptions } from '../xray/server/server.js';
import { parseByteSize } from '../shared/files.js';
import { EXIT_OK, choiceOption, exitsWith, log, parseHeader, parseLatency, parseRate, parseSeconds, readSecret, secretOnCommandLine, stopRequested, type ServerHooks } from './io.js';

export interface BackendFlags {
  listen?: string;
  unixSocket?: string;
  users?: string;
  dialect: string;
  secret?: string;
  secretFile?: string;
  secretEnv?: string;
  header?: string[];
  latencyMs?: string;
  errorRate?: string;
  garbageRate?: string;
  sessionIdle?: string;
  quiet?: boolean;
  bodyLimit?: string;
  requestTimeout?: string;
}

/** For embedding and tests. */
export type BackendHooks = ServerHooks<XrayBackend>;

export function xrayBackendCommand(hooks: BackendHooks = {}): Command {
  return secretOptions(new Command('xray-backend')
    .description('run an auth backend for Xray ExtAuth or Hysteria 2 (users file, sessions, IP limits, admin API, fault injection)')
    .option('--listen <host:port>', 'listen on TCP, e.g. 127.0.0.1:8080 (port 0: any free port)')
    .option('--unix-socket <path>', 'listen on a Unix socket instead')
    .option('--users <file>', 'users: a JSON array or JSON Lines of {credential, email, level, enabled, expiresAt, quotaBytes, usedBytes, maxIps}; reloaded when it changes')
    .option('--dialect <name>', `the contract to serve: ${Object.keys(DIALECTS).join(', ')}`, choiceOption(Object.keys(DIALECTS)), 'wiki'), 'secret', 'the secret every request must carry as Authorization: Bearer (events and /admin/)')
    .option('--header <header>', "require this header 'K: V' (repeatable; the wiki dialect's headers map)", (value: string, all: string[] = []) => [...all, value])
    .option('--latency-ms <n[-m]>', 'delay every event reply by N ms, or a random N..M ms')
    .option('--error-rate <p>', 'answer this share (0..1) of events with 503, without acting on them')
    .option('--garbage-rate <p>', 'answer this share (0..1) of events with 200 and a broken body')
    .option('--session-idle <duration>', 'a session not heard from for this long (or 3 heartbeat intervals) expires: a duration like 2m, or seconds (default 90)')
    .option('--quiet', 'no log line per request (only start, reloads and notes)')
    .option('--body-limit <size>', 'a request body larger than this is answered 413 and not read (default 1M)')
    .option('--request-timeout <duration>', 'a request not received whole within this is dropped (default 30s; slowloris)')
    .addHelpText(
      'after',
      '\nExample:\n  authkit xray-backend --listen 127.0.0.1:8080 --users fixtures/xray/users.json --dialect src --secret-env EXTAUTH_SECRET' +
        '\n\nEvents are POSTed to any path outside /admin/. Admin API (same secret or headers):' +
        '\n  GET /admin/sessions, GET /admin/stats, POST /admin/revoke and /admin/restore with {"credential": "..."}',
    )
    .action(exitsWith((flags: BackendFlags) => xrayBackend(flags, hooks)));
}

async function xrayBackend(flags: BackendFlags, hooks: BackendHooks): Promise<number> {
  const say = hooks.log ?? log;
  const { options, notes } = backendOptions(flags);
  const backend = await startXrayBackend({ ...options, log: say, logRequests: !flags.quiet });
  const where = backend.unixSocket === undefined ? backend.url : `unix:${backend.unixSocket} (xray-sim: --url ${backend.url} --unix-socket ${backend.unixSocket})`;
  say(`xray-backend: ${options.dialect.name} dialect, ${backend.state.users.users.length} users from ${flags.users}, listening on ${where}`);
  notes.forEach((note) => say(`note: ${note}`));
  hooks.onListening?.(backend);
  await stopRequested(hooks.signal);
  say('xray-backend: stopping');
  await backend.close();
  return EXIT_OK;
}

/** The flags as backend options, or an InputError naming the flag; `notes` are things to tell the user. */
export function backendOptions(flags: BackendFlags): { options: Omit<XrayBackendOptions, 'log'>; notes: string[] } {
  const notes: string[] = [];
  if (flags.listen !== undefined && flags.unixSocket !== undefined) throw new InputError('give --listen or --unix-socket, not both');
  if (flags.listen === undefined && flags.unixSocket === undefined) throw new InputError('where to listen: --listen HOST:PORT or --unix-socket PATH');
  if (flags.users === undefined) throw new InputError('--users FILE is required');
  const dialect = dialectNamed(flags.dialect);
  const secret = readSecret({ value: flags.secret, file: flags.secretFile, env: flags.secretEnv }, 'secret');
  if (flags.secret !== undefined) notes.push(secretOnCommandLine('secret'));
  const headers = (flags.header ?? []).map(parseHeader);
  const guarded = secret !== undefined || headers.length > 0;
  if (dialect.secret === 'none' && !dialect.customHeaders) {
    if (guarded) notes.push(`the ${dialect.name} dialect sends no secret and no headers: they guard only /admin/ (protect events with a URL token or network ACLs)`);
  } else if (headers.length > 0 && !dialect.customHeaders) {
    notes.push(`Xray's ${dialect.name} dialect sends no custom headers: a real proxy cannot pass --header (use --secret)`);
  }
  if (!guarded) notes.push('no --secret or --header: anyone who can reach the backend can use it and its admin API (revoke, sessions)');

  const options: Omit<XrayBackendOptions, 'log'> = { dialect, usersFile: flags.users, secret, headers, faults: {} };
  if (flags.listen !== undefined) Object.assign(options, parseHostPort(flags.listen));
  else options.unixSocket = flags.unixSocket;
  if (flags.latencyMs !== undefined) options.faults!.latencyMs = parseLatency(flags.latencyMs);
  if (flags.errorRate !== undefined) options.faults!.errorRate = parseRate(flags.errorRate, '--error-rate');
  if (flags.garbageRate !== undefined) options.faults!.garbageRate = parseRate(flags.garbageRate, '--garbage-rate');
  if ((options.faults!.errorRate ?? 0) + (options.faults!.garbageRate ?? 0) > 1) throw new InputError('--error-rate and --garbage-rate add up to more than 1');
  if (flags.bodyLimit !== undefined) options.bodyLimit = parseByteSize(flags.bodyLimit, '--body-limit');
  if (flags.requestTimeout !== undefined) options.requestTimeoutMs = parseSeconds(flags.requestTimeout, '--request-timeout', { min: 0.1, max: 3600 }) * 1000;
  if (flags.sessionIdle !== undefined) options.sessionIdleMs = parseSeconds(flags.sessionIdle, '--session-idle', { min: 0.001, max: 7 * 86400 }) * 1000;
  return { options, notes };
}

export { parseHeader, parseLatency, parseRate };


