/** `authkit xray-tap`: sit between a proxy and its ExtAuth / Hysteria 2 backend, show and record each exchange with the proxy's verdict. */
import { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { parseHostPort } from '../shared/listen.js';
import { parseByteSize } from '../shared/files.js';
import { DIALECTS, dialectNamed } from '../xray/wire/dialects/index.js';
import { startXrayTap, type TappedExchange } from '../xray/tap/tap.js';
import { xrayLine, xrayRecord } from '../xray/tap/record.js';
import { RecordingWriter } from '../tap/recording.js';
import { TapTally } from '../tap/tally.js';
import type { Relay, UpstreamAt } from '../tap/relay.js';
import { choiceOption, EXIT_OK, exitsWith, log, out, stdoutColors, stopRequested, timeParser, type ServerHooks } from './io.js';

export interface XrayTapFlags {
  listen?: string;
  upstream?: string;
  upstreamSocket?: string;
  dialect: string;
  timeout?: number;
  kickOnDeny?: boolean;
  record?: string;
  recordSecrets?: boolean;
  showSecrets?: boolean;
  json?: boolean;
  quiet?: boolean;
  keepBytes?: string;
}

export type XrayTapHooks = ServerHooks<Relay>;

export function xrayTapCommand(hooks: XrayTapHooks = {}): Command {
  return new Command('xray-tap')
    .description('sit between Xray (or Hysteria 2) and its auth backend: relay every byte unchanged, show each exchange with the proxy\'s verdict, record it for a replay')
    .option('--listen <host:port>', 'where the proxy\'s auth URL now points, e.g. 127.0.0.1:8081')
    .option('--upstream <url>', 'the real backend, http://HOST:PORT (the path and query the proxy uses pass through as they are)')
    .option('--upstream-socket <path>', 'reach the backend over this Unix socket instead of --upstream\'s host and port')
    .option('--dialect <name>', `how the proxy reads the replies: ${Object.keys(DIALECTS).join(', ')}`, choiceOption(Object.keys(DIALECTS)), 'wiki')
    .option('--timeout <seconds>', 'the proxy\'s timeout (default the dialect\'s: 5 s, hysteria2 10 s): a reply that never came within it is a timeout; a duration like 500ms, or seconds', timeParser('s', 0, 3600))
    .option('--kick-on-deny', 'a 401/403 on a heartbeat ends the connection (default on for wiki)')
    .option('--no-kick-on-deny', 'a 401/403 on a heartbeat only deletes the cache entry')
    .option('--record <file>', 'write one JSON line per exchange (credentials masked unless --record-secrets)')
    .option('--record-secrets', 'keep credentials and tokens in the recording, so it can be replayed (keep the file private)')
    .option('--show-secrets', 'print credentials and tokens in clear (masked by default)')
    .option('--json', 'print each exchange as a JSON line on stdout (the recording\'s format) and the totals as JSON at the end')
    .option('--quiet', 'print nothing per exchange, only the totals')
    .option('--keep-bytes <size>', 'bytes of each body kept for the verdict and the recording (default 1M; a longer body is marked truncated)')
    .addHelpText('after', '\nExample:\n  authkit xray-tap --listen 127.0.0.1:8081 --upstream http://127.0.0.1:8080 --record auth.jsonl --record-secrets\n  (point the proxy\'s auth URL at http://127.0.0.1:8081/...; Ctrl-C prints the totals)')
    .action(exitsWith((flags: XrayTapFlags) => xrayTap(flags, hooks)));
}

function upstreamOf(flags: XrayTapFlags): UpstreamAt {
  if (flags.upstream === undefined) throw new InputError('--upstream URL is required (the real backend, http://HOST:PORT)');
  let url: URL;
  try {
    url = new URL(flags.upstream);
  } catch {
    throw new InputError(`--upstream: not a URL: ${flags.upstream}`);
  }
  if (url.protocol !== 'http:') throw new InputError(`--upstream: ${url.protocol}// is not relayed: the tap reads plain HTTP, so put it on a hop without TLS (http://)`);
  if (flags.upstreamSocket !== undefined) return { path: flags.upstreamSocket };
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 80 : Number(url.port) };
}

async function xrayTap(flags: XrayTapFlags, hooks: XrayTapHooks): Promise<number> {
  const say = hooks.log ?? log;
  if (flags.listen === undefined) throw new InputError('--listen HOST:PORT is required (where the proxy\'s auth URL will point)');
  const listen = parseHostPort(flags.listen);
  const upstream = upstreamOf(flags);
  const dialect = dialectNamed(flags.dialect);
  if (flags.json && flags.quiet) throw new InputError('--json and --quiet exclude each other');
  if (flags.recordSecrets && flags.record === undefined) throw new InputError('--record-secrets needs --record FILE');
  const keepBytes = flags.keepBytes === undefined ? undefined : parseByteSize(flags.keepBytes, '--keep-bytes');
  const writer = flags.record === undefined ? undefined : new RecordingWriter(flags.record, '--record', (error) => say(`xray-tap: cannot write ${flags.record} (${error.message}): recording stopped, relaying goes on`));
  const tally = new TapTally();
  const colors = stdoutColors();
  const onExchange = (exchange: TappedExchange): void => {
    const shown = xrayRecord(exchange, dialect.name, flags.showSecrets === true);
    tally.add(shown.event ?? 'not-an-event', shown.verdict, shown.class, shown.latencyMs, shown.violations.map((v) => v.id));
    writer?.write(flags.recordSecrets === flags.showSecrets ? shown : xrayRecord(exchange, dialect.name, flags.recordSecrets === true));
    if (flags.json) out(JSON.stringify(shown));
    else if (!flags.quiet) out(xrayLine(shown, colors));
  };
  let relay: Relay;
  try {
    relay = await startXrayTap({
      listen, upstream, dialect, onExchange,
      kickOnDeny: flags.kickOnDeny ?? dialect.kickOnDenyDefault,
      timeoutSeconds: flags.timeout ?? dialect.timeout.default,
      keepBytes,
      log: (line) => say(`xray-tap: ${line}`),
      onConnection: () => tally.connections++,
      onUpstreamDown: (id, reason) => {
        tally.upstreamDown++;
        say(`xray-tap: connection ${id}: the backend cannot be reached (${reason}): the proxy's connection was reset, as it would be without the tap`);
      },
    });
  } catch (error) {
    await writer?.close();
    throw error;
  }
  const target = 'path' in upstream ? `unix:${upstream.path}` : flags.upstream;
  say(`xray-tap: ${dialect.name} dialect, relaying ${relay.where} -> ${target}${flags.record ? `, recording to ${flags.record}${flags.recordSecrets ? ' with secrets' : ' (masked: not replayable)'}` : ''}`);
  hooks.onListening?.(relay);
  await stopRequested(hooks.signal);
  await relay.close();
  await writer?.close();
  if (flags.json) out(JSON.stringify({ totals: tally.json() }));
  else say(`xray-tap: stopped\n${tally.text()}`);
  return EXIT_OK;
}
