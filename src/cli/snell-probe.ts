/** `authkit snell-probe`: ask a live Snell server whether a PSK (or every user of a file) authenticates, and how fast. */
import { secretOptions } from './options.js';
import { Command } from 'commander';
import { parseKdfChoice, selectKdf } from '../snell/wire/kdf.js';
import { probeSnell } from '../snell/client.js';
import { type ProbeAction, type ProbeOptions, type ProbeResult } from '../snell/client/probe-types.js';
import { loadUsersFile } from '../snell/users.js';
import type { SnellVersion } from '../snell/wire/first-packet.js';
import type { ObfsMode } from '../snell/wire/obfs.js';
import { PADDING_STYLES, type PaddingStyle } from '../snell/wire/padding.js';
import { parseHex, utf8 } from '../shared/bytes.js';
import { InputError } from '../shared/errors.js';
import { escapeForDisplay } from '../shared/text.js';
import { addLoadOptions, LOAD_FLAGS, parseLoadFlags, type LoadFlags } from './load.js';
import { runLoadCli } from './load-run.js';
import { withModes, type ModeTable } from './modes.js';
import { SnellLoadTarget } from '../snell/load.js';
import { choiceOption, EXIT_FAILED, EXIT_OK, exitsWith, integerOption, log, out, readSecret, secretOnCommandLine, stdoutColors, timeParser } from './io.js';

interface ProbeFlags extends LoadFlags {
  badRatio?: string;
  server?: string;
  psk?: string;
  pskFile?: string;
  pskEnv?: string;
  users?: string;
  user?: string;
  parallel: number;
  version: number;
  obfs: ObfsMode;
  obfsHost?: string;
  ping?: boolean;
  target?: string;
  command: 'connect' | 'connect-v2';
  udp?: string;
  quic?: boolean;
  send?: string;
  sendHex?: string;
  timeout: number;
  kdf?: string;
  paddingStyle?: PaddingStyle;
}

/** Which flag belongs to which mode (a flag outside its mode is exit 2). */
export const SNELL_PROBE_MODES: ModeTable = {
  modes: [
    { name: 'load', switches: ['load'] },
    { name: 'audit', switches: ['users'] },
    { name: 'one-shot', switches: [] },
  ],
  flags: {
    ...Object.fromEntries(['--server', '--version', '--obfs', '--obfs-host', '--ping', '--target', '--command', '--udp', '--quic', '--send', '--send-hex', '--padding-style', '--timeout', '--json', '--kdf'].map((f) => [f, 'all'])),
    ...Object.fromEntries(['--psk-env', '--psk-file', '--psk'].map((f) => [f, ['one-shot', 'load']])),
    '--users': ['audit', 'load'], '--user': ['audit', 'load'], '--parallel': ['audit'],
    ...Object.fromEntries([...LOAD_FLAGS, '--bad-ratio'].map((f) => [f, ['load']])),
  },
};

export function snellProbeCommand(): Command {
  return withModes(addLoadOptions(secretOptions(new Command('snell-probe')
    .description('ask a live Snell server whether a PSK authenticates (or every user of a users file), with obfs, and how fast')
    .option('--server <host:port>', 'the Snell server'), 'psk', 'the PSK')
    .option('--users <file>', 'probe every user of this users file (JSON, JSON Lines, CSV or name:psk)')
    .option('--user <name>', '--users: probe only this user')
    .option('--parallel <n>', '--users: probes at once', integerOption(1, 256), 4)
    .option('--version <n>', 'Snell version 1-5 (v4 and v5 share the TCP format)', integerOption(1, 5), 4)
    .option('--obfs <mode>', 'off, http or tls', choiceOption(['off', 'http', 'tls'] as const), 'off')
    .option('--obfs-host <host>', 'the obfs host (default bing.com for http, cloudfront.net for tls)')
    .option('--ping', 'send PING (the server answers PONG): the cheapest full check')
    .option('--target <host:port>', 'open a tunnel to this target')
    .option('--command <cmd>', '--target: connect-v2 (reuse, the default) or connect', choiceOption(['connect', 'connect-v2'] as const), 'connect-v2')
    .option('--udp <host:port>', 'UDP-over-TCP: send one datagram to this address and wait for one back')
    .option('--quic', 'with --target: a v5 QUIC envelope over UDP (--send is the inner packet; default a stand-in QUIC Initial)')
    .option('--send <text>', 'data to send through the tunnel (or as the datagram); what comes back is printed')
    .option('--send-hex <hex>', 'the same, in hex')
    .option('--padding-style <style>', 'how the first frame\'s padding is filled: opensnell (the default) balances its bits against the sealed payload as OpenSnell\'s client does and, by sing-snell\'s reverse engineering, Surge; random is plain random bytes (authkit before; no known client)', choiceOption(PADDING_STYLES))
    .option('--timeout <duration>', 'give up after this long: a duration like 2s, or milliseconds', timeParser('ms', 1, 600_000), 5000)
    .option('--json', 'one JSON object per probe: {"outcome","reply","connectMs","firstByteMs","totalMs","user"}, and "note", "close" {"kind": "reset"|"fin", "afterMs"} when the server closed with nothing sent')
    .option('--kdf <backend>', 'Argon2id backend: auto, native, node-crypto, wasm-simd, node-rs, wasm (or AUTHKIT_KDF)')
    .option('--bad-ratio <p>', '--load: the share of connections (0..1) made with a PSK no user has'))
    .addHelpText('after', '\nExamples:\n  authkit snell-probe --server 203.0.113.1:8388 --psk-env SNELL_PSK --ping\n  authkit snell-probe --server 203.0.113.1:8388 --users users.csv --parallel 8 --ping --json\n  authkit snell-probe --server 203.0.113.1:8388 --users users.csv --ping --load --rate 200 --duration 30s --bad-ratio 0.1')
    .action(exitsWith(snellProbe)), SNELL_PROBE_MODES);
}

function hostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !(port >= 1 && port <= 65535)) throw new InputError(`${flag}: expected HOST:PORT, got "${text}"`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

async function snellProbe(flags: ProbeFlags): Promise<number> {
  if (flags.server === undefined) throw new InputError('--server HOST:PORT is required');
  const server = hostPort(flags.server, '--server');
  const actions = [flags.ping, flags.target, flags.udp].filter((x) => x !== undefined && x !== false).length;
  if (actions !== 1) throw new InputError('choose one of --ping, --target HOST:PORT or --udp HOST:PORT');
  if (flags.quic && flags.target === undefined) throw new InputError('--quic: the envelope carries a target: give --target HOST:PORT');
  let action: ProbeAction;
  if (flags.quic) action = { kind: 'quic', ...hostPort(flags.target!, '--target') };
  else if (flags.ping) action = { kind: 'ping' };
  else if (flags.target !== undefined) action = { kind: 'connect', ...hostPort(flags.target, '--target'), command: flags.command };
  else action = { kind: 'udp', ...hostPort(flags.udp!, '--udp') };
  if (flags.send !== undefined && flags.sendHex !== undefined) throw new InputError('--send and --send-hex exclude each other');
  const send = flags.sendHex !== undefined ? parseHex(flags.sendHex, '--send-hex') : flags.send !== undefined ? utf8.encode(flags.send) : undefined;
  if (send && action.kind === 'ping') throw new InputError('--send: PING carries no data');
  if (flags.paddingStyle !== undefined && (action.kind === 'quic' || flags.version < 4)) throw new InputError('--padding-style: only v4/v5 TCP first frames carry padding');

  const psk = readSecret({ value: flags.psk, file: flags.pskFile, env: flags.pskEnv }, 'psk');
  if (flags.psk !== undefined && flags.users === undefined) log(`note: ${secretOnCommandLine('psk')}`);
  let probes: { user?: string; psk: string }[];
  if (flags.users !== undefined) {
    if (psk !== undefined) throw new InputError('--users and a PSK exclude each other');
    const { users } = await loadUsersFile(flags.users);
    const chosen = flags.user === undefined ? users : users.filter((u) => u.name === flags.user);
    if (chosen.length === 0) throw new InputError(flags.user === undefined ? `--users ${flags.users}: no users` : `--user ${flags.user}: no such user in ${flags.users}`);
    probes = chosen.map((u) => ({ user: u.name, psk: u.psk }));
  } else {
    if (psk === undefined) throw new InputError('a PSK is required: --psk-env VAR, --psk-file FILE or --psk (or --users FILE)');
    probes = [{ psk }];
  }
  const kdf = await selectKdf(flags.kdf === undefined ? undefined : parseKdfChoice(flags.kdf));
  const base: Omit<ProbeOptions, 'psk'> = {
    ...server, version: flags.version as SnellVersion, obfs: flags.obfs, obfsHost: flags.obfsHost, action, send, timeoutMs: flags.timeout, kdf, paddingStyle: flags.paddingStyle,
  };
  if (flags.load) {
    const badRatio = flags.badRatio === undefined ? 0 : Number(flags.badRatio);
    if (!/^\s*(0(\.\d+)?|1(\.0+)?|\.\d+)\s*$/.test(flags.badRatio ?? '0')) throw new InputError(`--bad-ratio: expected a share from 0 to 1, got "${flags.badRatio}"`);
    const parsed = parseLoadFlags(flags);
    if (parsed.options.pipelining > 1) throw new InputError('--pipelining: every Snell probe is its own connection');
    const target = new SnellLoadTarget({ probe: base, psks: probes.map((p) => p.psk), badRatio });
    return runLoadCli({
      title: `snell-probe --load ${flags.server}`, target, parsed, flags, drainMs: flags.timeout + 500,
      kinds: badRatio > 0 ? ['good PSK', 'bad PSK'] : undefined,
      settings: [['target', `${flags.server}, Snell v${flags.version}, obfs ${flags.obfs}${badRatio > 0 ? `, ${badRatio * 100} % bad PSKs` : ''}`], ['timeout', `${flags.timeout} ms`]],
    });
  }
  const results: (ProbeResult & { user?: string })[] = new Array(probes.length);
  let next = 0;
  let failed = 0;
  const c = stdoutColors();
  const lane = async (): Promise<void> => {
    while (next < probes.length) {
      const index = next++;
      const probe = probes[index]!;
      const result = { ...(await probeSnell({ ...base, psk: probe.psk })), user: probe.user };
      results[index] = result;
      // An error reply authenticates the PSK but fails the request (as curl -f fails on a 4xx).
      if (result.outcome !== 'authenticated' || result.reply?.kind === 'error') failed++;
      // Results print as they finish: an audit of a large panel shows progress.
      out(flags.json ? JSON.stringify(probeJson(result)) : renderProbe(result, c));
    }
  };
  await Promise.all(Array.from({ length: Math.min(flags.parallel, probes.length) }, lane));
  if (probes.length > 1 && !flags.json) out(`${probes.length - failed} of ${probes.length} users authenticated`);
  return failed === 0 ? EXIT_OK : EXIT_FAILED;
}

function probeJson(result: ProbeResult & { user?: string }): Record<string, unknown> {
  return {
    outcome: result.outcome, reply: result.reply ?? null, connectMs: result.connectMs ?? null, firstByteMs: result.firstByteMs ?? null,
    totalMs: result.totalMs, user: result.user ?? null,
    ...(result.received ? { received: Buffer.from(result.received).toString('hex') } : {}),
    ...(result.note ? { note: result.note } : {}),
    ...(result.close ? { close: result.close } : {}),
  };
}

function renderProbe(result: ProbeResult & { user?: string }, c: ReturnType<typeof stdoutColors>): string {
  const who = result.user === undefined ? '' : `${result.user}: `;
  const ok = result.outcome === 'authenticated' && result.reply?.kind !== 'error';
  const reply = result.reply
    ? result.reply.kind === 'error' ? ` (error reply ${result.reply.code}: ${escapeForDisplay(result.reply.message ?? '')})` : ` (${result.reply.kind})`
    : '';
  const times = [
    result.connectMs === undefined ? undefined : `connect ${result.connectMs.toFixed(1)} ms`,
    result.firstByteMs === undefined ? undefined : `first byte ${result.firstByteMs.toFixed(1)} ms`,
    `total ${result.totalMs.toFixed(1)} ms`,
  ].filter(Boolean).join(', ');
  const lines = [`${ok ? c.green('✔') : c.red('✘')} ${who}${result.outcome}${reply}  ${c.dim(times)}`];
  if (result.received) lines.push(`  received ${result.received.length} bytes: ${escapeForDisplay(Buffer.from(result.received).toString('utf8').slice(0, 200))}`);
  if (result.note) lines.push(`  ${result.note}`);
  return lines.join('\n');
}
