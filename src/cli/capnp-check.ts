/** `authkit capnp-check`: call a Proksi external_auth service as Proksi does, and show what Proksi would do. */
import { conformanceOptions } from './options.js';
import { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { parseJsonText } from '../shared/json.js';
import { HTTP_TOKEN } from '../shared/text.js';
import { parseOnly } from '../conformance/runner.js';
import { capnpSuite } from '../capnp/suite/suite.js';
import { capnpCapabilities, parseCapnpFixture, type CapnpFixture } from '../capnp/suite/fixture.js';
import type { CapnpSuiteContext } from '../capnp/suite/context.js';
import { redactHeaderPairs } from '../shared/redact.js';
import { checkFixtureSchema } from '../shared/fixture-schema.js';
import { CONFORMANCE_FLAGS, listSuite, type ConformanceFlags, reachOrFail, runSuiteCli } from './conformance.js';
import { withModes, type ModeTable } from './modes.js';
import { AuthServiceClient, CallError } from '../capnp/client.js';
import { buildAuthRequest, clientRequest, errorOutcome, PROKSI_DEFAULTS, proksiOutcome, type ProksiOptions, type ProksiOutcome } from '../capnp/model.js';
import { socketAddressText } from '../shared/ip.js';
import type { AuthDecision, AuthRequest } from '../capnp/wire/schema.js';
import { LOAD_FLAGS, addLoadOptions, parseLoadFlags, type LoadFlags } from './load.js';
import { runLoadCli } from './load-run.js';
import { CapnpLoadTarget } from '../capnp/load.js';
import { REPLAY_FLAGS, REPLAY_SETS, replayOptions, type ReplayFlags } from './replay-run.js';
import { choiceOption, EXIT_FAILED, EXIT_OK, exitsWith, integerOption, log, out, stdoutColors, timeParser, readBinaryFile } from './io.js';

interface CheckFlags extends LoadFlags, ConformanceFlags {
  connections: number;
  socket?: string;
  method: string;
  host: string;
  path: string;
  query: string;
  clientIp: string;
  header: string[];
  hostHeader: boolean;
  http2?: boolean;
  forwardHeaders?: string;
  maxHeaders: number;
  timeoutMs: number;
  onError: 'deny' | 'allow';
  upstreamHeader: string;
  showSecrets?: boolean;
}

/** Which flag belongs to which mode (a flag outside its mode is exit 2). */
export const CAPNP_CHECK_MODES: ModeTable = {
  modes: [
    { name: 'replay-load', switches: ['replay', 'load'], together: true },
    { name: 'replay', switches: ['replay'] },
    { name: 'conformance', switches: ['conformance', 'list'] },
    { name: 'load', switches: ['load'] },
    { name: 'one-shot', switches: [] },
  ],
  flags: {
    ...Object.fromEntries(['--socket', '--timeout-ms', '--json'].map((f) => [f, 'all'])),
    // A replay sends the recorded requests as Proksi built them.
    ...Object.fromEntries(['--forward-headers', '--max-headers', '--on-error', '--upstream-header', '--show-secrets'].map((f) => [f, ['conformance', 'load', 'one-shot']])),
    ...Object.fromEntries(REPLAY_FLAGS.map((f) => [f, ['replay', 'replay-load']])),
    // The client request: the conformance suite sends its own (the fixture's).
    ...Object.fromEntries(['--method', '--host', '--no-host-header', '--http2', '--path', '--query', '--client-ip', '--header'].map((f) => [f, ['one-shot', 'load']])),
    ...Object.fromEntries(CONFORMANCE_FLAGS.map((f) => [f, ['conformance']])),
    '--junit': ['conformance', 'replay'],
    ...Object.fromEntries([...LOAD_FLAGS, '--connections'].map((f) => [f, ['load']])),
    // A replay through the load engine: the recording sets the arrivals (no rate, concurrency, stages or count).
    ...Object.fromEntries([...LOAD_FLAGS, '--connections'].filter((f) => !REPLAY_SETS.includes(f)).map((f) => [f, ['load', 'replay-load']])),
  },
};

export function capnpCheckCommand(): Command {
  return withModes(addLoadOptions(conformanceOptions(replayOptions(new Command('capnp-check')
    .description('call a Proksi external_auth service over Cap\'n Proto RPC as Proksi does, and show what Proksi would do')
    .option('--socket <path>', 'the service\'s Unix socket')
    .option('--method <method>', 'the client request\'s method', 'GET')
    .option('--host <host>', 'the host the client asks for, port included: its Host header over HTTP/1.1 (Proksi cuts it at the first \':\'), the URI authority with --http2', 'example.com')
    .option('--no-host-header', 'HTTP/1.1: the client sends no Host header (Proksi\'s host is then "")')
    .option('--http2', 'an HTTP/2 client: the host comes from the URI authority and no Host header is sent')
    .option('--path <path>', 'the request path, raw', '/')
    .option('--query <query>', 'the query string, without ?', '')
    .option('--client-ip <ip:port>', 'the client address, as Proksi sends it', '203.0.113.7:51234')
    .option('--header <header>', "a client request header 'Name: value' (repeatable, order and duplicates kept)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--forward-headers <names>', 'Proksi\'s forward_headers allowlist, comma-separated ("" = none)')
    .option('--max-headers <n>', 'Proksi\'s max_headers', integerOption(0, 1_000_000), PROKSI_DEFAULTS.maxHeaders)
    .option('--timeout-ms <duration>', 'Proksi\'s timeout_ms: milliseconds, or a duration like 2s', timeParser('ms', 1, 3_600_000), PROKSI_DEFAULTS.timeoutMs)
    .option('--on-error <mode>', 'Proksi\'s on_error: deny or allow', choiceOption(['deny', 'allow'] as const), PROKSI_DEFAULTS.onError)
    .option('--upstream-header <name>', 'Proksi\'s upstream_header', PROKSI_DEFAULTS.upstreamHeader)
    .option('--json', 'print {"decision","proksi","warnings","latencyMs"}')
    .option('--show-secrets', 'print Authorization, Cookie and other credential headers in clear (masked by default)'), 'capnp-tap', '--socket'), {
      suite: 'the conformance suite (C01-C15) against the service',
      fixture: 'JSON {"pass","block","redirect"} listing requests and what the service must decide',
      example: 'C01,C04',
    })
    .option('--connections <n>', '--load: connections to the service; calls are spread over them (default 1)', integerOption(1, 1024), 1))
    .addHelpText('after', "\nExamples:\n  authkit capnp-check --socket /run/auth.sock --path /admin --header 'authorization: Bearer t0ken'\n  authkit capnp-check --socket /run/auth.sock --replay checks.jsonl --speed 10\n  authkit capnp-check --socket /run/auth.sock --load --rate 2000 --duration 30s --threshold 'p99<5ms'")
    .action(exitsWith(capnpCheck)), CAPNP_CHECK_MODES);
}

/** `Name: value` of a client request: any value, even empty or non-ASCII, as clients send them. */
function clientHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = text.slice(0, Math.max(colon, 0)).trim();
  // The text is not quoted: a header value may be a credential.
  if (colon < 1 || !HTTP_TOKEN.test(name)) throw new InputError("--header: expected 'Name: value' with a valid header name (the value is not shown: it may be a secret)");
  return [name, text.slice(colon + 1).trim()];
}

export function proksiOptionsOf(flags: Pick<CheckFlags, 'forwardHeaders' | 'maxHeaders' | 'timeoutMs' | 'onError' | 'upstreamHeader'>): ProksiOptions {
  const forwardHeaders = flags.forwardHeaders === undefined ? undefined : flags.forwardHeaders.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
  return { forwardHeaders, maxHeaders: flags.maxHeaders, timeoutMs: flags.timeoutMs, onError: flags.onError, upstreamHeader: flags.upstreamHeader.toLowerCase() };
}

async function capnpCheck(flags: CheckFlags & ReplayFlags): Promise<number> {
  if (flags.replay !== undefined) return flags.load ? (await import('./capnp-replay.js')).runCapnpReplayLoad(flags) : (await import('./capnp-replay.js')).runCapnpReplay(flags);
  if (flags.list) return listSuite(capnpSuite);
  if (flags.conformance) return capnpConformance(flags);
  if (flags.socket === undefined) throw new InputError('--socket PATH is required (the service\'s Unix socket)');
  // Proksi prints the socket address, so the service sees one spelling per address.
  const clientIp = socketAddressText(flags.clientIp);
  if (clientIp === undefined) throw new InputError(`--client-ip: expected IP:PORT as Proksi sends it (e.g. 203.0.113.7:51234 or [2001:db8::1]:443), got "${flags.clientIp}"`);
  const client = clientRequest({
    method: flags.method, host: flags.host, path: flags.path, query: flags.query.replace(/^\?/, ''), clientIp,
    headers: flags.header.map(clientHeader), http2: flags.http2, noHostHeader: !flags.hostHeader,
  });
  const options = proksiOptionsOf(flags);
  const { request, notes } = buildAuthRequest(client, options);
  notes.forEach((n) => log(`note: ${n}`));
  if (flags.load) return capnpLoad(flags, flags.socket, request, options);

  let decision: AuthDecision | undefined;
  let latencyMs: number | undefined;
  let failure: CallError | undefined;
  let connection: AuthServiceClient | undefined;
  try {
    connection = await AuthServiceClient.connect(flags.socket, options.timeoutMs);
    ({ decision, latencyMs } = await connection.check(request, { timeoutMs: options.timeoutMs }));
  } catch (error) {
    if (!(error instanceof CallError)) throw error;
    failure = error;
  } finally {
    connection?.close();
  }
  const outcome = decision ? proksiOutcome(decision, client, options) : errorOutcome(client, options);
  // Credentials the client sent go upstream: masked unless asked for.
  const result = flags.showSecrets ? outcome : { ...outcome, proksi: { ...outcome.proksi, headers: redactHeaderPairs(outcome.proksi.headers) } };
  if (flags.json) {
    out(JSON.stringify({
      decision: decision ? { action: decision.action, statusCode: decision.statusCode, upstreamValue: decision.upstreamValue, redirectLocation: decision.redirectLocation, responseBody: decision.responseBody } : null,
      proksi: result.proksi, warnings: result.warnings, latencyMs: latencyMs ?? null,
      ...(failure ? { error: { kind: failure.kind, message: failure.message } } : {}),
    }));
  } else {
    out(renderCheck(decision, failure, result.proksi, result.warnings, latencyMs, options));
  }
  return failure ? EXIT_FAILED : EXIT_OK;
}

async function capnpLoad(flags: CheckFlags, socketPath: string, request: AuthRequest, options: ProksiOptions): Promise<number> {
  const parsed = parseLoadFlags(flags);
  if (parsed.options.pipelining > 1) throw new InputError('--pipelining: calls on a Cap\'n Proto connection are already concurrent; use --concurrency (and --connections)');
  const target = new CapnpLoadTarget({ socketPath, request, timeoutMs: options.timeoutMs, connections: flags.connections });
  return runLoadCli({
    title: `capnp-check --load ${socketPath}`, target, parsed, flags, drainMs: options.timeoutMs + 500,
    settings: [['target', `unix:${socketPath}, ${flags.connections} connection(s)`], ['timeout', `${options.timeoutMs} ms`]],
  });
}

function renderCheck(decision: AuthDecision | undefined, failure: CallError | undefined, proksi: ProksiOutcome, warnings: string[], latencyMs: number | undefined, options: ProksiOptions): string {
  const c = stdoutColors();
  const lines: string[] = [];
  if (decision) {
    lines.push(`${c.bold('decision')}: ${decision.action}  statusCode ${decision.statusCode}  upstreamValue ${JSON.stringify(decision.upstreamValue)}  redirectLocation ${JSON.stringify(decision.redirectLocation)}  responseBody ${JSON.stringify(decision.responseBody)}  ${c.dim(`(${latencyMs} ms)`)}`);
  } else {
    lines.push(`${c.red('call failed')} (${failure!.kind}): ${failure!.message}; Proksi applies on_error=${options.onError}`);
  }
  const headers = proksi.headers.map(([name, value]) => `  ${name}: ${value}`);
  switch (proksi.outcome) {
    case 'proxied':
      lines.push(`${c.green('Proksi proxies the request')}; upstream request headers:`, ...headers);
      break;
    case 'fail-open':
      lines.push(`${c.red('Proksi FAILS OPEN')}: the request goes upstream unauthenticated, with headers:`, ...headers);
      break;
    default:
      lines.push(`${c.yellow(`Proksi answers ${proksi.status}`)}${proksi.outcome === 'redirected' ? ' (redirect)' : ''}; response headers:`, ...headers);
      if (proksi.body !== '') lines.push(`  body: ${JSON.stringify(proksi.body)}`);
  }
  for (const warning of warnings) lines.push(c.yellow(`warning: ${warning}`));
  return lines.join('\n');
}

async function capnpConformance(flags: CheckFlags): Promise<number> {
  if (flags.only !== undefined) parseOnly(flags.only, capnpSuite);
  if (flags.socket === undefined) throw new InputError('--socket PATH is required (the service\'s Unix socket)');
  let fixture: CapnpFixture | undefined;
  if (flags.fixture !== undefined) {
    const value = parseJsonText(readBinaryFile(flags.fixture, '--fixture').toString('utf8'), flags.fixture);
    checkFixtureSchema(value, 'capnp-conformance', flags.fixture);
    fixture = parseCapnpFixture(value, flags.fixture);
  } else {
    log('note: no --fixture: the checks that need requests with known decisions are skipped, and the run cannot pass (--allow-skips to accept that)');
  }
  const unreachable = await reachOrFail(flags.socket, { path: flags.socket });
  if (unreachable !== undefined) return unreachable;
  const ctx: CapnpSuiteContext = { socket: flags.socket, options: proksiOptionsOf(flags), fixture, latencies: [], decisions: [] };
  return runSuiteCli(capnpSuite, ctx, flags, { has: capnpCapabilities(fixture), timeoutMs: Math.max(30_000, ctx.options.timeoutMs * 120) });
}
