/** `authkit xray-sim`: play the proxy's side of ExtAuth / Hysteria 2 auth against a backend. */
import { conformanceOptions, secretOptions } from './options.js';
import { Command, Option } from 'commander';
import { InputError } from '../shared/errors.js';
import { EVENT_TYPES, type ConnectionFacts, type Dialect, type EventType } from '../xray/wire/dialect.js';
import { DIALECTS, dialectNamed } from '../xray/wire/dialects/index.js';
import { sendEvent, type EventExchange } from '../xray/client.js';
import { GoTransport } from '../xray/transport.js';
import { parseGoUrl } from '../xray/wire/go-url.js';
import { redactBody, redactHeaders, redactText, redactUrl } from '../xray/redact.js';
import { runSessions, type TimelineEntry } from '../xray/session.js';
import { countUpAddresses } from '../shared/ip.js';
import { parseOnly } from '../conformance/runner.js';
import { CONFORMANCE_FLAGS, listSuite, reachOrFail, runSuiteCli } from './conformance.js';
import { fixtureCapabilities, loadFixture } from '../xray/suite/fixture.js';
import { extAuthSuite, inapplicableWithout, targetCapabilities } from '../xray/suite/extauth.js';
import { hysteriaSuite } from '../xray/suite/hysteria.js';
import type { XraySuiteContext } from '../xray/suite/context.js';

import { EXIT_FAILED, EXIT_OK, exitsWith, integerOption, log, out, parseSeconds, secondsOption, stdoutColors, timeParser } from './io.js';
import { addLoadOptions, LOAD_FLAGS } from './load.js';
import { withModes, type ModeTable } from './modes.js';
import { xrayLoad } from './xray-load.js';
import { connectionFacts, prepareEvent, type PreparedEvent, type SimFlags } from './xray-options.js';

const only = (...modes: string[]): string[] => modes;
const FACTS = only('one-shot', 'session', 'load');

/** Which flag belongs to which mode (a flag outside its mode is exit 2). */
export const XRAY_SIM_MODES: ModeTable = {
  modes: [
    { name: 'conformance', switches: ['conformance', 'list'] },
    { name: 'load', switches: ['load'] },
    { name: 'session', switches: ['session'] },
    { name: 'one-shot', switches: [] },
  ],
  flags: {
    ...Object.fromEntries(['--url', '--unix-socket', '--cacert', '--insecure', '--dialect', '--header', '--secret-env', '--secret-file', '--secret', '--timeout', '--kick-on-deny', '--no-kick-on-deny', '--json'].map((f) => [f, 'all'])),
    '--show-secrets': only('one-shot'),
    ...Object.fromEntries(['--credential', '--source-ip', '--source-port', '--local-ip', '--local-port', '--inbound-tag', '--email', '--level', '--tx'].map((f) => [f, FACTS])),
    '--event': only('one-shot', 'load'),
    '--session': only('session'), '--connections': only('session'), '--ips': only('session'), '--stagger': only('session'),
    '--heartbeat': only('session', 'load'), '--ttl': only('session', 'load'),
    ...Object.fromEntries([...CONFORMANCE_FLAGS, '--burst'].map((f) => [f, only('conformance')])),
    ...Object.fromEntries([...LOAD_FLAGS, '--arrival', '--sessions', '--mean-duration', '--users', '--ips-per-user'].map((f) => [f, only('load')])),
    '--duration': only('session', 'load'),
  },
};

export function xraySimCommand(): Command {
  return withModes(addLoadOptions(conformanceOptions(secretOptions(new Command('xray-sim')
    .description('play Xray\'s VLESS inbound (ExtAuth) or Hysteria 2 against an auth backend and show what the proxy decides')
    .option('--url <url>', 'the backend URL the proxy POSTs to')
    .option('--unix-socket <path>', 'connect to the backend over this Unix socket (the URL still names host and path)')
    .option('--cacert <file>', 'https: trust this CA (PEM) for the backend\'s certificate instead of the system roots')
    .option('--insecure', 'https: do not verify the backend\'s certificate (a self-signed test backend; Xray itself always verifies)')
    .option('--dialect <name>', `field names and reply rules: ${Object.keys(DIALECTS).join(', ')}`, 'wiki')
    .addOption(new Option('--event <type>', 'the event to send').choices([...EVENT_TYPES]).default('authorization'))
    .option('--credential <uuid>', 'the VLESS UUID (or Xray text id; for hysteria2 the auth string)')
    .option('--source-ip <ip>', 'client address the proxy reports', '198.51.100.10')
    .option('--source-port <port>', 'client port (default random)', integerOption(0, 65535))
    .option('--local-ip <ip>', 'the inbound\'s local address', '10.0.0.1')
    .option('--local-port <port>', 'the inbound\'s local port', integerOption(0, 65535), 443)
    .option('--inbound-tag <tag>', 'the inbound\'s tag')
    .option('--email <email>', 'wiki dialect: the email hint (a backend must not trust it)')
    .option('--level <n>', 'wiki dialect: the level hint', integerOption(0, 0xffffffff))
    .option('--tx <bytes-per-second>', 'hysteria2: the client\'s declared receive rate (uint64, 0 = unknown)', '0')
    .option('--header <header>', "a custom header 'K: V' (repeatable; wiki dialect)", (value: string, all: string[]) => [...all, value], [] as string[]), 'secret', 'the secret, sent as Authorization: Bearer')
    .option('--timeout <seconds>', 'the proxy\'s timeout in seconds over the whole exchange (redirects and body included); 0 = none, which is Xray\'s default, but a hung backend would then hang this run, so authkit defaults to 5 (hysteria2: its fixed 10); a duration like 500ms, or seconds', timeParser('s', 0, 3600))
    .option('--kick-on-deny', 'a 401/403 on a heartbeat ends the connection (default on for wiki)')
    .option('--no-kick-on-deny', 'a 401/403 on a heartbeat only deletes the cache entry (the archived code)')
    .option('--json', 'print {"verdict","class","status","user","latencyMs","request","warnings"}')
    .option('--show-secrets', 'print the credential, the secret and credential headers in clear (masked by default)')
    .option('--session', 'run whole connections (authorization, connect, heartbeats, disconnect) and print the timeline')
    .option('--heartbeat <seconds>', '--session: heartbeat interval, 0 = none (default 1); --load event mix: default 30', secondsOption)
    .option('--duration <duration>', '--session: how long each connection lives, seconds (default 3); --load: how long to measure (default 10s)')
    .option('--ttl <seconds>', '--session: the proxy\'s positive cache lifetime (0 = no cache, Xray\'s default)', secondsOption, 0)
    .option('--connections <n>', '--session: connections for the credential', integerOption(1, 1000), 1)
    .option('--ips <k>', '--session: source IPs they come from (counting up from --source-ip)', integerOption(1, 1000), 1)
    .option('--stagger <seconds>', '--session: time between connection starts', secondsOption, 0.2), {
      suite: 'the conformance suite (ExtAuth X01-X31, or Hysteria 2 H01-H14) against the backend',
      fixture: 'JSON naming allowed and denied credentials, limits and a revoke hook',
      example: 'X01,X07',
    })
    .option('--burst <n>', '--conformance: parallel requests in the burst checks', integerOption(1, 5000), 200)
    .option('--arrival <r>', '--load event mix: new connections per second')
    .option('--sessions <n>', '--load event mix: connections live at the start (default arrival x mean duration)')
    .option('--mean-duration <seconds>', '--load event mix: mean connection lifetime (exponential; default 60)')
    .option('--users <file>', '--load: spread the requests over the credentials of this users file (JSON, as xray-backend reads)')
    .option('--ips-per-user <k>', '--load: source IPs per user, counting up from --source-ip (default 1)'), { hasDuration: true })
    .addHelpText('after', '\nExamples:\n  authkit xray-sim --url http://127.0.0.1:8080/auth --conformance --fixture fixture.json --junit report.xml\n  authkit xray-sim --url http://127.0.0.1:8080/auth --credential 550e8400-e29b-41d4-a716-446655440000\n  authkit xray-sim --url http://127.0.0.1:8080/auth --credential 550e8400-e29b-41d4-a716-446655440000 --session --connections 4 --ips 2\n  authkit xray-sim --url http://127.0.0.1:8080/auth --credential 550e8400-e29b-41d4-a716-446655440000 --load --rate 2000 --duration 30s --threshold \'p99<20ms\'\n  authkit xray-sim --url http://127.0.0.1:8080/auth --users users.json --load --arrival 50 --mean-duration 120 --heartbeat 30 --ttl 60 --duration 60s')
    .action(exitsWith(xraySim)), XRAY_SIM_MODES);
}

async function xraySim(flags: SimFlags): Promise<number> {
  if (flags.conformance || flags.list) return runConformance(flags);
  const prepared = prepareEvent(flags);
  const { facts, notes } = connectionFacts(flags, prepared.dialect);
  if (flags.load) {
    [...prepared.notes, ...notes].forEach((n) => log(`note: ${n}`));
    return xrayLoad(flags, prepared, facts);
  }
  if (flags.session) {
    [...prepared.notes, ...notes].forEach((n) => log(`note: ${n}`));
    return simulateSessions(flags, prepared, facts);
  }
  if (!prepared.dialect.events.includes(flags.event)) {
    throw new InputError(`the ${prepared.dialect.name} dialect has no ${flags.event} event (it has ${prepared.dialect.events.join(', ')})`);
  }
  [...prepared.notes, ...notes].forEach((n) => log(`note: ${n}`));
  const exchange = await sendEvent({ ...prepared, type: flags.event, facts, unixSocket: flags.unixSocket });
  const custom = prepared.headers.map(([name]) => name);
  const secrets = secretsOf(facts.credential, prepared);
  const shown = flags.showSecrets ? { custom: [], secrets: [], credential: '' } : { custom, secrets, credential: facts.credential };
  if (flags.json) out(JSON.stringify(exchangeJson(exchange, shown.credential, shown.custom, shown.secrets, flags.showSecrets)));
  else out(renderExchange(exchange, prepared.dialect, flags.event, shown.credential, shown.custom, shown.secrets, flags.showSecrets));
  return exchange.verdict.class === 'allow' ? EXIT_OK : EXIT_FAILED;
}

/** What must never be printed: the credential, the secret and the configured header values. */
export function secretsOf(credential: string, prepared: Pick<PreparedEvent, 'secret' | 'headers'>): string[] {
  return [credential, ...(prepared.secret === undefined ? [] : [prepared.secret]), ...prepared.headers.map(([, value]) => value)];
}

/** Headers and URLs as they may be printed: as they are with --show-secrets, masked otherwise. */
function printed(show: boolean): { headers: (h: Record<string, string>, custom: readonly string[], secrets?: readonly string[]) => Record<string, string>; url: (u: string) => string } {
  return {
    headers: (h, custom, secrets = []) => (show ? h : redactHeaders(h, custom, secrets)),
    url: (u) => (show ? u : redactUrl(u)),
  };
}

/** `show`: print secrets in clear (--show-secrets); otherwise every credential is masked. */
export function exchangeJson(exchange: EventExchange, credential: string, customHeaders: readonly string[], secrets: readonly string[], show = false): Record<string, unknown> {
  const { headers, url } = printed(show);
  return {
    verdict: exchange.verdict.verdict,
    class: exchange.verdict.class,
    status: exchange.reply?.status ?? null,
    user: exchange.verdict.user ?? null,
    latencyMs: exchange.latencyMs,
    request: {
      ...exchange.request, url: url(exchange.request.url),
      headers: headers(exchange.request.headers, customHeaders, secrets), body: redactBody(exchange.request.body, credential, secrets),
    },
    warnings: exchange.verdict.warnings.map((w) => redactText(w, secrets)),
    redirects: exchange.redirects.map((r) => ({ status: r.status, location: url(redactText(r.location, secrets)) })),
    reason: redactText(exchange.verdict.reason, secrets),
    effect: exchange.verdict.effect,
    reply: exchange.reply
      ? { proto: exchange.reply.proto, headers: headers(exchange.reply.headers, [], secrets), body: redactText(truncate(exchange.reply.body), secrets), bytes: exchange.reply.bytes, truncated: exchange.reply.truncated }
      : null,
  };
}

function truncate(text: string, limit = 4096): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}… (${text.length - limit} more characters)`;
}

export function renderExchange(
  exchange: EventExchange, dialect: Dialect, event: EventType, credential: string, customHeaders: readonly string[], secrets: readonly string[], show = false,
): string {
  const c = stdoutColors();
  const { headers, url } = printed(show);
  const lines: string[] = [];
  lines.push(c.bold(`POST ${url(exchange.request.url)}`) + c.dim(`  (${dialect.name} dialect, ${event})`));
  for (const [name, value] of Object.entries(headers(exchange.request.headers, customHeaders))) lines.push(c.dim(`> ${name}: ${value}`));
  lines.push(`> ${redactBody(exchange.request.body, credential, secrets)}`);
  for (const hop of exchange.redirects) lines.push(c.yellow(`< ${hop.status} redirect to ${url(redactText(hop.location, secrets))}: followed, as Go does`));
  if (exchange.reply) {
    lines.push(c.bold(`< ${exchange.reply.status}`) + c.dim(`  ${exchange.latencyMs} ms, ${exchange.reply.bytes} bytes${exchange.reply.truncated ? ' (authkit stopped at its read cap)' : ''}`));
    for (const [name, value] of Object.entries(headers(exchange.reply.headers, [], secrets))) lines.push(c.dim(`< ${name}: ${value}`));
    if (exchange.reply.body !== '') lines.push(`< ${redactText(truncate(exchange.reply.body, 2000), secrets)}`);
  } else {
    lines.push(c.bold('< no reply') + c.dim(`  after ${exchange.latencyMs} ms`));
  }
  const v = exchange.verdict;
  const paint = v.class === 'allow' ? c.green : v.verdict === 'ignored' ? c.yellow : c.red;
  lines.push(`${paint(`${v.verdict.toUpperCase()} (${v.class})`)}: ${redactText(v.reason, secrets)}`);
  if (v.user) lines.push(`user: ${JSON.stringify(v.user)}`);
  lines.push(`effect: ${v.effect}`);
  for (const warning of v.warnings) lines.push(c.yellow(`warning: ${redactText(warning, secrets)}`));
  return lines.join('\n');
}

async function simulateSessions(flags: SimFlags, prepared: PreparedEvent, facts: ConnectionFacts): Promise<number> {
  if (!prepared.dialect.cache && flags.ttl > 0) log(`note: ${prepared.dialect.name} has no cache: every connection is authorized, --ttl is not used`);
  const sourceIps = countUpAddresses(flags.sourceIp, flags.ips);
  const c = stdoutColors();
  const line = (entry: TimelineEntry): string => {
    const at = `+${(entry.atMs / 1000).toFixed(3)}s`.padStart(9);
    const who = `conn ${entry.connection}`.padEnd(8);
    const ip = entry.sourceIp.padEnd(16);
    if (!entry.exchange) return `${at}  ${who} ${ip} ${c.yellow(entry.event.padEnd(13))} ${entry.note ?? ''}`;
    const v = entry.exchange.verdict;
    const paint = v.class === 'allow' ? c.green : v.verdict === 'ignored' ? c.yellow : c.red;
    const status = entry.exchange.reply ? String(entry.exchange.reply.status) : '---';
    return `${at}  ${who} ${ip} ${entry.event.padEnd(13)} ${status} ${paint(v.class.padEnd(14))} ${entry.exchange.latencyMs} ms${v.verdict === 'deny' ? `  ${v.effect}` : ''}`;
  };
  const report = await runSessions({
    ...prepared, unixSocket: flags.unixSocket, facts, sourceIps, connections: flags.connections, staggerSeconds: flags.stagger,
    heartbeatSeconds: flags.heartbeat ?? 1, durationSeconds: parseSeconds(flags.duration ?? '3', '--duration'), ttlSeconds: flags.ttl,
    onEvent: flags.json ? undefined : (entry) => out(line(entry)),
  });
  const summary = `${report.admitted} of ${flags.connections} connections admitted and never denied; ` +
    `authorization ${report.counts.authorization}, cache hits ${report.counts['cache-hit']}, connect ${report.counts.connect}, ` +
    `heartbeat ${report.counts.heartbeat}, disconnect ${report.counts.disconnect}, refused ${report.counts.refused}, kicked ${report.counts.kicked}`;
  if (flags.json) {
    const timeline = report.timeline.map((e) => ({
      atMs: e.atMs, connection: e.connection, sourceIp: e.sourceIp, event: e.event, note: e.note ?? null,
      status: e.exchange?.reply?.status ?? null, verdict: e.exchange?.verdict.verdict ?? null, class: e.exchange?.verdict.class ?? null,
      latencyMs: e.exchange?.latencyMs ?? null,
    }));
    out(JSON.stringify({ timeline, counts: report.counts, admitted: report.admitted, denied: report.denied }));
    log(summary);
  } else {
    out(summary);
  }
  return report.denied === 0 ? EXIT_OK : EXIT_FAILED;
}

async function runConformance(flags: SimFlags): Promise<number> {
  const dialect = dialectNamed(flags.dialect);
  const suite = dialect.reply === 'hysteria-ok' ? hysteriaSuite : extAuthSuite;
  if (flags.list) return listSuite(suite);
  if (flags.only !== undefined) parseOnly(flags.only, suite);
  const prepared = prepareEvent(flags);
  prepared.notes.forEach((n) => log(`note: ${n}`));
  const fixture = flags.fixture === undefined ? undefined : loadFixture(flags.fixture, dialect.reply === 'extauth-user');
  if (!fixture) log('note: no --fixture: the checks that need known credentials are skipped, and the run cannot pass (--allow-skips to accept that)');
  const url = parseGoUrl(prepared.url);
  const unreachable = await reachOrFail(redactUrl(prepared.url), flags.unixSocket ? { path: flags.unixSocket } : { host: url.hostname, port: url.port });
  if (unreachable !== undefined) return unreachable;
  const transport = new GoTransport({ unixSocket: flags.unixSocket, tls: prepared.tls });
  const ctx: XraySuiteContext = { target: prepared, fixture, transport, burst: flags.burst };
  // The longest checks send 50 requests one after another, each allowed the proxy's timeout.
  const timeoutMs = prepared.timeoutSeconds > 0 ? (55 * prepared.timeoutSeconds + 10) * 1000 : 120_000;
  return runSuiteCli(suite, ctx, flags, {
    has: new Set([...fixtureCapabilities(fixture), ...targetCapabilities(ctx)]), timeoutMs,
    inapplicable: inapplicableWithout,
    // A request a timed-out check left behind must not hold the report back.
    cleanup: async () => transport.close(),
  });
}
