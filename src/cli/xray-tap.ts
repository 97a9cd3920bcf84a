/** `authkit xray-tap`: sit between a proxy and its ExtAuth / Hysteria 2 backend, show and record each exchange with the proxy's verdict. */
import { Command } from 'commander';
import { InputError } from '../shared/errors.js';
import { parseHostPort } from '../shared/listen.js';
import { parseByteSize } from '../shared/files.js';
import { DIALECTS, dialectNamed } from '../xray/wire/dialects/index.js';
import { DEFAULT_XRAY_TAP_MAX_PENDING, startXrayTap, type TappedExchange } from '../xray/tap/tap.js';
import { xrayLine, xrayRecord } from '../xray/tap/record.js';
import type { UpstreamAt } from '../tap/relay.js';
import { choiceOption, exitsWith, integerOption, timeParser } from './io.js';
import { runTap, tapOptions, type TapFlags, type TapHooks } from './tap-run.js';

export interface XrayTapFlags extends TapFlags {
  listen?: string;
  upstream?: string;
  upstreamSocket?: string;
  dialect: string;
  timeout?: number;
  kickOnDeny?: boolean;
  keepBytes?: string;
  maxPending?: number;
}

export function xrayTapCommand(hooks: TapHooks = {}): Command {
  return tapOptions(new Command('xray-tap')
    .description('sit between Xray (or Hysteria 2) and its auth backend: relay every byte unchanged, show each exchange with the proxy\'s verdict, record it for a replay')
    .option('--listen <host:port>', 'where the proxy\'s auth URL now points, e.g. 127.0.0.1:8081')
    .option('--upstream <url>', 'the real backend, http://HOST:PORT (the proxy\'s path and query pass through as they are)')
    .option('--upstream-socket <path>', 'reach the backend over this Unix socket instead of --upstream\'s host and port')
    .option('--dialect <name>', `how the proxy reads the replies: ${Object.keys(DIALECTS).join(', ')}`, choiceOption(Object.keys(DIALECTS)), 'wiki')
    .option('--timeout <seconds>', 'the proxy\'s timeout (default the dialect\'s: 5 s, hysteria2 10 s): a reply that never came within it is a timeout; a duration like 500ms, or seconds', timeParser('s', 0, 3600))
    .option('--kick-on-deny', 'a 401/403 on a heartbeat ends the connection (default on for wiki)')
    .option('--no-kick-on-deny', 'a 401/403 on a heartbeat only deletes the cache entry')
    .option('--keep-bytes <size>', 'bytes of each body kept for the verdict and the recording (default 1M; a longer body is marked truncated)')
    .option('--max-pending <n>', `requests one connection may have waiting for their replies, each holding its head and up to --keep-bytes of body; past it the connection is relayed and no longer read (default ${DEFAULT_XRAY_TAP_MAX_PENDING}: Go's client sends one at a time)`, integerOption(1, 10_000_000)))
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

function xrayTap(flags: XrayTapFlags, hooks: TapHooks): Promise<number> {
  if (flags.listen === undefined) throw new InputError('--listen HOST:PORT is required (where the proxy\'s auth URL will point)');
  const listen = parseHostPort(flags.listen);
  const upstream = upstreamOf(flags);
  const dialect = dialectNamed(flags.dialect);
  const keepBytes = flags.keepBytes === undefined ? undefined : parseByteSize(flags.keepBytes, '--keep-bytes');
  return runTap({
    name: 'xray-tap', flags, hooks,
    record: (exchange: TappedExchange, keepSecrets: boolean) => xrayRecord(exchange, dialect.name, keepSecrets, flags.secretHeader),
    line: xrayLine,
    tally: (r) => ({ event: r.event ?? 'not-an-event', verdict: r.verdict, cls: r.class, latencyMs: r.latencyMs, violations: r.violations.map((v) => v.id) }),
    start: (callbacks) => startXrayTap({
      ...callbacks, listen, upstream, dialect, keepBytes, maxPending: flags.maxPending,
      kickOnDeny: flags.kickOnDeny ?? dialect.kickOnDenyDefault,
      timeoutSeconds: flags.timeout ?? dialect.timeout.default,
    }),
    describe: (relay) => `${dialect.name} dialect, listening on ${relay.where}, relaying to ${'path' in upstream ? `unix:${upstream.path}` : flags.upstream}`,
  });
}
