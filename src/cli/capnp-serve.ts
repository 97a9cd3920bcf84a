/** `authkit capnp-serve`: a rule-driven Proksi external_auth service on a Unix socket, for testing Proksi and for demos. */
import { Command } from 'commander';
import { InputError } from '../errors.js';
import { decideByRules, loadRulesFile, watchRules, type RuleSet } from '../capnp/rules.js';
import { startAuthServer, type AuthServer } from '../capnp/server.js';
import type { AuthDecision, AuthRequest } from '../capnp/schema.js';
import { EXIT_OK, exitsWith, log, parseLatency, parseRate, stopRequested } from './io.js';

export interface ServeFlags {
  socket?: string;
  rules?: string;
  latencyMs?: string;
  errorRate?: string;
  mode: string;
  quiet?: boolean;
}

/** For embedding and tests: where log lines go, and a signal that stops the service like SIGINT does. */
export interface ServeHooks {
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Called once the service listens. */
  onListening?: (server: AuthServer) => void;
  /** Rules-file polling interval in ms (tests); default 1000. */
  pollMs?: number;
}

export function capnpServeCommand(hooks: ServeHooks = {}): Command {
  return new Command('capnp-serve')
    .description('run a Proksi external_auth service (Cap\'n Proto RPC on a Unix socket) that decides by a JSON rules file')
    .option('--socket <path>', 'the Unix socket to listen on (a stale socket file is replaced)')
    .option('--rules <file>', 'the rules: {"rules":[{"match":{...},"decision":{...}}],"default":{...}}; reloaded when it changes')
    .option('--latency-ms <n[-m]>', 'delay every decision by N ms, or a random N..M ms')
    .option('--error-rate <p>', 'answer this share (0..1) of calls with an exception Return')
    .option('--mode <octal>', 'the socket file\'s permissions', '660')
    .option('--quiet', 'no log line per call (only start, reloads and aborted connections)')
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

/** The flags checked, or an InputError naming the flag. */
export function serveOptions(flags: ServeFlags): { socket: string; rules: string; mode: number; faults: ServeFaults } {
  if (flags.socket === undefined) throw new InputError('--socket PATH is required (the Unix socket to listen on)');
  if (flags.rules === undefined) throw new InputError('--rules FILE is required (see fixtures/capnp-serve/rules.json)');
  if (!/^0?[0-7]{3}$/.test(flags.mode)) throw new InputError(`--mode: expected octal permissions such as 660 or 0600, got "${flags.mode.slice(0, 20)}"`);
  const faults: ServeFaults = {};
  if (flags.latencyMs !== undefined) faults.latencyMs = parseLatency(flags.latencyMs);
  if (flags.errorRate !== undefined) faults.errorRate = parseRate(flags.errorRate, '--error-rate');
  return { socket: flags.socket, rules: flags.rules, mode: parseInt(flags.mode, 8), faults };
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

