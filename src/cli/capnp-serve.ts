/** `authkit capnp-serve`: a rule-driven Proksi external_auth service on a Unix socket, for testing Proksi and for demos. */
import { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { loadRulesFile, watchRules, type RuleSet } from '../capnp/server/rules.js';
import { decideByRules } from '../capnp/server/rule-match.js';
import { DEFAULT_MAX_ANSWERS, DEFAULT_MAX_PARTIAL_BYTES, DEFAULT_SERVE_TRAVERSAL_WORDS, startAuthServer, type AuthServer } from '../capnp/server/server.js';
import type { AuthDecision, AuthRequest } from '../capnp/wire/schema.js';
import { EXIT_OK, exitsWith, log, parseLatency, parseRate, stopRequested, type ServerHooks } from './io.js';

export interface ServeFlags {
  socket?: string;
  rules?: string;
  latencyMs?: string;
  errorRate?: string;
  mode: string;
  quiet?: boolean;
  maxAnswers?: string;
  maxPartialBytes?: string;
  traversalLimit?: string;
}

/** For embedding and tests. */
export type ServeHooks = ServerHooks<AuthServer>;

export function capnpServeCommand(hooks: ServeHooks = {}): Command {
  return new Command('capnp-serve')
    .description('run a Proksi external_auth service (Cap\'n Proto RPC on a Unix socket) that decides by a JSON rules file')
    .option('--socket <path>', 'the Unix socket to listen on (a stale socket file is replaced)')
    .option('--rules <file>', 'the rules: {"rules":[{"match":{...},"decision":{...}}],"default":{...}}; reloaded when it changes')
    .option('--latency-ms <n[-m]>', 'delay every decision by N ms, or a random N..M ms')
    .option('--error-rate <p>', 'answer this share (0..1) of calls with an exception Return')
    .option('--mode <octal>', 'the socket file\'s permissions', '660')
    .option('--quiet', 'no log line per call (only start, reloads and aborted connections)')
    .option('--max-answers <n>', `answers one connection may hold (Bootstraps and Calls, each until returned and finished); past it the connection is aborted (default ${DEFAULT_MAX_ANSWERS})`)
    .option('--max-partial-bytes <bytes>', `bytes all connections together may hold in frames not yet complete, e.g. 268435456 or 256MiB; a connection that would pass it is aborted (default 256MiB)`)
    .option('--traversal-limit <words>', `words (8 bytes each) the reader may visit in one message, the check() params included; past it a Call gets an exception Return (default ${DEFAULT_SERVE_TRAVERSAL_WORDS} words = 4 MiB)`)
    .addHelpText(
      'after',
      '\nExample:\n  authkit capnp-serve --socket /tmp/auth.sock --rules fixtures/capnp-serve/rules.json' +
        '\n\nFirst matching rule wins; no match: block 401. A match may test method, host, pathPrefix, pathRegex,' +
        '\nquery, clientIp (IP, IP:PORT or prefix/len) and header {name, present, equals, regex}. See fixtures/capnp-serve/README.md.',
    )
    .action(exitsWith((flags: ServeFlags) => capnpServe(flags, hooks)));
}

export interface ServeFaults {
  latencyMs?: [number, number];
  errorRate?: number;
}

export interface ServeLimits {
  maxAnswers: number;
  maxPartialBytes: number;
  traversalWords: number;
}

/** The flags checked, or an InputError naming the flag. */
export function serveOptions(flags: ServeFlags): { socket: string; rules: string; mode: number; faults: ServeFaults; limits: ServeLimits } {
  if (flags.socket === undefined) throw new InputError('--socket PATH is required (the Unix socket to listen on)');
  if (flags.rules === undefined) throw new InputError('--rules FILE is required (see fixtures/capnp-serve/rules.json)');
  if (!/^0?[0-7]{3}$/.test(flags.mode)) throw new InputError(`--mode: expected octal permissions such as 660 or 0600, got "${flags.mode.slice(0, 20)}"`);
  const faults: ServeFaults = {};
  if (flags.latencyMs !== undefined) faults.latencyMs = parseLatency(flags.latencyMs);
  if (flags.errorRate !== undefined) faults.errorRate = parseRate(flags.errorRate, '--error-rate');
  const limits: ServeLimits = {
    maxAnswers: flags.maxAnswers === undefined ? DEFAULT_MAX_ANSWERS : count(flags.maxAnswers, '--max-answers', 2 ** 32, 'answers'),
    maxPartialBytes: flags.maxPartialBytes === undefined ? DEFAULT_MAX_PARTIAL_BYTES : bytes(flags.maxPartialBytes, '--max-partial-bytes'),
    traversalWords: flags.traversalLimit === undefined ? DEFAULT_SERVE_TRAVERSAL_WORDS : count(flags.traversalLimit, '--traversal-limit', 2 ** 32, 'words (8 bytes each)'),
  };
  return { socket: flags.socket, rules: flags.rules, mode: parseInt(flags.mode, 8), faults, limits };
}

/** A whole number from 1 to `max`. */
function count(text: string, flag: string, max: number, unit: string): number {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || value < 1 || value > max) throw new InputError(`${flag}: expected a number of ${unit} from 1 to ${max}, got "${text.slice(0, 20)}"`);
  return value;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

/** Bytes: a whole number, optionally with KiB, MiB or GiB (K, M, G: the same, powers of 1024). */
function bytes(text: string, flag: string): number {
  const match = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? BYTE_UNITS[match[2]!.toLowerCase()] : undefined;
  const value = match && unit ? Number(match[1]) * unit : NaN;
  if (!(value >= 1 && value <= 2 ** 50)) throw new InputError(`${flag}: expected bytes from 1 to 1024TiB, such as 268435456 or 256MiB, got "${text.slice(0, 20)}"`);
  return value;
}

/** Decides by the current rules, after the injected latency; an injected error is a rejection (an exception Return). */
export function faultyDecider(rules: () => RuleSet, faults: ServeFaults, random: () => number = Math.random): (request: AuthRequest) => AuthDecision | Promise<AuthDecision> {
  const { latencyMs, errorRate = 0 } = faults;
  const decide = (request: AuthRequest): AuthDecision => {
    if (errorRate > 0 && random() < errorRate) throw new Error('injected failure (--error-rate)');
    return decideByRules(rules(), request);
  };
  if (!latencyMs || latencyMs[1] === 0) return decide;
  const [min, max] = latencyMs;
  return (request) =>
    new Promise((resolve, reject) => {
      setTimeout(() => {
        try {
          resolve(decide(request));
        } catch (error) {
          reject(error);
        }
      }, min + Math.floor(random() * (max - min + 1)));
    });
}

async function capnpServe(flags: ServeFlags, hooks: ServeHooks): Promise<number> {
  const say = hooks.log ?? log;
  const options = serveOptions(flags);
  let rules = await loadRulesFile(options.rules);
  rules.warnings.forEach((w) => say(`warning: ${w}`));
  const server = await startAuthServer({
    socketPath: options.socket,
    mode: options.mode,
    decide: faultyDecider(() => rules, options.faults),
    log: say,
    logCalls: !flags.quiet,
    ...options.limits,
  });
  const watcher = watchRules(options.rules, {
    current: rules,
    onReload: (next) => {
      rules = next;
    },
    log: say,
    pollMs: hooks.pollMs,
  });
  const fallback = rules.default;
  const faults = [
    options.faults.latencyMs ? `latency ${[...new Set(options.faults.latencyMs)].join('-')} ms` : '',
    options.faults.errorRate ? `error rate ${options.faults.errorRate}` : '',
  ].filter((f) => f !== '');
  say(
    `capnp-serve: ${rules.rules.length} rules from ${options.rules} (default ${fallback.action} ${fallback.statusCode})` +
      `${faults.length > 0 ? `, ${faults.join(', ')}` : ''}, listening on unix:${server.path} (mode ${flags.mode.replace(/^0(?=\d{3})/, '')})`,
  );
  hooks.onListening?.(server);
  await stopRequested(hooks.signal);
  say('capnp-serve: stopping');
  watcher.close();
  await server.close();
  return EXIT_OK;
}

