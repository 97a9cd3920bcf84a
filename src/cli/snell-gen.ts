/** `authkit snell-gen`: the first bytes a Snell client sends, for a PSK or for every user of a file. */
import { writeFileSync } from 'node:fs';
import { secretOptions } from './options.js';
import { Command, Option } from 'commander';
import { buildFirstPacket, buildQuicPacket, defaultCommand, isFramedVersion, type FirstPacket, type SnellVersion } from '../snell/wire/first-packet.js';
import { parseKdfChoice, selectKdf, type KdfBackend } from '../snell/wire/kdf.js';
import { MAX_PADDING, MAX_PAYLOAD } from '../snell/wire/frame.js';
import { QUIC_FIXED_BIT } from '../snell/wire/quic.js';
import { wrapObfs, type ObfsMode } from '../snell/wire/obfs.js';
import { PADDING_STYLES, type PaddingStyle } from '../snell/wire/padding.js';
import { carriesTarget, COMMANDS, type SnellCommand } from '../snell/wire/request.js';
import { loadUsersFile } from '../snell/users.js';
import { parseHex, toHex } from '../shared/bytes.js';
import { InputError } from '../shared/errors.js';
import { withModes, type ModeTable } from './modes.js';
import { choiceOption, describeFsError, EXIT_OK, exitsWith, integerOption, log, readSecret, secretOnCommandLine } from './io.js';

interface GenFlags {
  host?: string;
  port?: number;
  psk?: string;
  pskFile?: string;
  pskEnv?: string;
  users?: string;
  version: number;
  command?: SnellCommand;
  salt?: string;
  paddingLen?: number;
  padding?: string;
  paddingStyle?: PaddingStyle;
  early?: string;
  clientId?: string;
  obfs: ObfsMode;
  obfsHost?: string;
  quic?: boolean;
  inner?: string;
  format: 'hex' | 'base64' | 'raw';
  out?: string;
  json?: boolean;
  kdf?: string;
}

/** Which flag belongs to which kind of output (a flag for another is exit 2). */
export const SNELL_GEN_MODES: ModeTable = {
  modes: [
    { name: 'quic', switches: ['quic'] },
    { name: 'users', switches: ['users'] },
    { name: 'frame', switches: [] },
  ],
  flags: {
    ...Object.fromEntries(['--host', '--port', '--version', '--salt', '--obfs', '--obfs-host', '--out', '--kdf', '--quic', '--users'].map((f) => [f, 'all'])),
    '--inner': ['quic'],
    ...Object.fromEntries(['--psk', '--psk-file', '--psk-env', '--format', '--json'].map((f) => [f, ['quic', 'frame']])),
    ...Object.fromEntries(['--command', '--padding-len', '--padding', '--padding-style', '--early', '--client-id'].map((f) => [f, ['users', 'frame']])),
  },
};

export function snellGenCommand(): Command {
  return withModes(secretOptions(new Command('snell-gen')
    .description('build the first bytes a Snell client sends (a v1-v5 first frame or a v5 QUIC envelope)')
    .option('--host <host>', 'target host the request asks for')
    .option('--port <port>', 'target port', integerOption(0, 65535)), 'psk', 'the PSK')
    .option('--users <file>', 'one frame per user of a users file, as JSON Lines {"user","wire"}')
    .option('--version <n>', 'Snell protocol version 1..5', integerOption(1, 5), 4)
    .addOption(new Option('--command <cmd>', 'request command (default: connect-v2, or connect for v1/v3)').choices(Object.keys(COMMANDS)))
    .option('--salt <hex>', '16-byte salt (default: random; never reuse one against an official server)')
    .option('--padding-len <n>', 'padding of this length (default: 256..511 as real clients)', integerOption(0, MAX_PADDING))
    .option('--padding <hex>', 'exact plain padding bytes')
    .option('--padding-style <style>', 'how the first frame\'s padding is filled: opensnell (the default) balances its bits against the sealed payload as OpenSnell\'s client does and, by sing-snell\'s reverse engineering, Surge; random is plain random bytes (authkit before; no known client)', choiceOption(PADDING_STYLES))
    .option('--early <hex>', 'application data in the first frame after the request')
    .option('--client-id <hex>', 'client id bytes in the request')
    .option('--obfs <mode>', 'wrap in simple-obfs: off, http or tls', choiceOption(['off', 'http', 'tls'] as const), 'off')
    .option('--obfs-host <host>', 'Host header or SNI for obfs (default bing.com for http, cloudfront.net for tls)')
    .option('--quic', 'build a v5 QUIC proxy envelope around --inner instead of a TCP frame')
    .option('--inner <hex>', 'the inner QUIC packet for --quic')
    .option('--format <fmt>', 'hex, base64 or raw (bytes to stdout or --out)', choiceOption(['hex', 'base64', 'raw'] as const), 'hex')
    .option('--out <file>', 'write the bytes to a file instead of stdout')
    .option('--json', 'print {"version","salt","headerPlain","paddingLen","payloadLen","request","wire"}')
    .option('--kdf <backend>', 'Argon2id backend: auto, native, node-crypto, wasm-simd, node-rs, wasm (or AUTHKIT_KDF)')
    .addHelpText('after', '\nExample:\n  authkit snell-gen --psk-env SNELL_PSK --host example.com --port 443 --json')
    .action(exitsWith(snellGen)), SNELL_GEN_MODES);
}

async function snellGen(flags: GenFlags, cli: Command): Promise<number> {
  const psk = readSecret({ value: flags.psk, file: flags.pskFile, env: flags.pskEnv }, 'psk');
  if (psk === undefined && flags.users === undefined) throw new InputError('a PSK is required: --psk-file, --psk-env or --psk (or --users FILE)');
  if (psk !== undefined && flags.users !== undefined) throw new InputError('give either a PSK or --users, not both');
  if (flags.psk !== undefined) log(`note: ${secretOnCommandLine('psk')}`);
  const kdf = await selectKdf(flags.kdf === undefined ? undefined : parseKdfChoice(flags.kdf));
  const salt = flags.salt === undefined ? undefined : parseHex(flags.salt, '--salt');
  if (salt && salt.length !== 16) throw new InputError(`--salt: expected 16 bytes, got ${salt.length}`);

  if (flags.quic) return emit(flags, await quicPacket(flags, cli, psk, kdf, salt));

  const version = flags.version as SnellVersion;
  const command = flags.command ?? defaultCommand(version);
  if (carriesTarget(command) && (flags.host === undefined || flags.port === undefined)) {
    throw new InputError(`--command ${command} needs --host and --port`);
  }
  if (flags.padding !== undefined && flags.paddingLen !== undefined) throw new InputError('give --padding or --padding-len, not both');
  if (flags.padding !== undefined && flags.paddingStyle !== undefined) throw new InputError('--padding gives the bytes; --padding-style fills a length: give one');
  if (flags.paddingStyle !== undefined && !isFramedVersion(version)) throw new InputError(`--version ${version} has no padding (legacy chunks); --padding-style is v4/v5 only`);
  const padding = flags.padding !== undefined ? parseHex(flags.padding, '--padding') : flags.paddingLen;
  if (padding !== undefined && !isFramedVersion(version)) throw new InputError(`--version ${version} has no padding (legacy chunks); padding is v4/v5 only`);
  if (padding instanceof Uint8Array && padding.length > MAX_PADDING) throw new InputError(`--padding: at most ${MAX_PADDING} bytes`);
  const clientId = flags.clientId === undefined ? new Uint8Array(0) : parseHex(flags.clientId, '--client-id');
  if (clientId.length > 255) throw new InputError('--client-id: at most 255 bytes');
  if (flags.host !== undefined) checkHost(flags.host);
  const options = {
    version, kdf, salt, padding, paddingStyle: flags.paddingStyle,
    request: { command, clientId, host: flags.host, port: flags.port },
    early: flags.early === undefined ? undefined : parseHex(flags.early, '--early'),
  };

  if (flags.users !== undefined) {
    const { users, warnings } = await loadUsersFile(flags.users);
    warnings.forEach(log);
    const lines: string[] = [];
    for (const user of users) {
      const packet = await buildFirstPacket({ ...options, psk: user.psk });
      lines.push(JSON.stringify({ user: user.name, wire: toHex(wrapObfs(packet.wire, flags.obfs, flags.obfsHost)) }));
    }
    return writeOutput(flags, Buffer.from(`${lines.join('\n')}\n`), true);
  }
  const packet = await buildFirstPacket({ ...options, psk: psk! });
  return emit(flags, { ...packet, wire: wrapObfs(packet.wire, flags.obfs, flags.obfsHost) });
}

/** Flags that shape TCP first frames and mean nothing in a QUIC envelope (the mode table refuses the others). */
const TCP_ONLY_FLAGS = ['users'] as const;

async function quicPacket(flags: GenFlags, cli: Command, psk: string | undefined, kdf: KdfBackend, salt: Uint8Array | undefined): Promise<FirstPacket> {
  const ignored = TCP_ONLY_FLAGS.filter((name) => flags[name] !== undefined);
  if (ignored.length > 0) throw new InputError(`--quic builds a QUIC envelope; it takes no ${ignored.map(flagName).join(', ')}`);
  if (psk === undefined) throw new InputError('--quic needs a PSK');
  if (cli.getOptionValueSource('version') !== 'default' && flags.version !== 5) throw new InputError('--quic is a v5 envelope; --version must be 5');
  if (flags.obfs !== 'off') throw new InputError('--quic envelopes are not wrapped in obfs');
  if (flags.host === undefined || flags.port === undefined) throw new InputError('--quic needs --host and --port (the target)');
  checkHost(flags.host);
  if (flags.inner === undefined) throw new InputError('--quic needs --inner HEX (the inner QUIC packet)');
  const inner = parseHex(flags.inner, '--inner');
  const room = MAX_PAYLOAD - (4 + Buffer.byteLength(flags.host) + 2);
  if (inner.length > room) throw new InputError(`--inner: ${inner.length} bytes, at most ${room} fit in one envelope with this host`);
  if (salt && salt[0]! & QUIC_FIXED_BIT) log('warning: the salt\'s first byte has bit 0x40 set; the official v5 server treats such a datagram as raw QUIC');
  return buildQuicPacket({ psk, kdf, salt, host: flags.host, port: flags.port, inner });
}

function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function checkHost(host: string): void {
  const length = Buffer.byteLength(host);
  if (length < 1 || length > 255) throw new InputError(`--host: ${length} bytes, expected 1 to 255`);
}

function emit(flags: GenFlags, packet: FirstPacket): number {
  if (flags.json) {
    const json = {
      version: packet.version, salt: toHex(packet.salt), headerPlain: toHex(packet.headerPlain),
      paddingLen: packet.paddingLen, payloadLen: packet.payloadLen, request: toHex(packet.request), wire: toHex(packet.wire),
    };
    return writeOutput(flags, Buffer.from(`${JSON.stringify(json)}\n`), true);
  }
  if (flags.format === 'raw') return writeOutput(flags, Buffer.from(packet.wire), false);
  const text = flags.format === 'hex' ? toHex(packet.wire) : Buffer.from(packet.wire).toString('base64');
  return writeOutput(flags, Buffer.from(`${text}\n`), true);
}

function writeOutput(flags: GenFlags, bytes: Buffer, text: boolean): number {
  if (flags.out !== undefined) {
    try {
      writeFileSync(flags.out, bytes);
    } catch (error) {
      throw new InputError(`--out ${flags.out}: ${describeFsError(error)}`);
    }
    log(`wrote ${bytes.length} bytes to ${flags.out}`);
  } else if (text || !process.stdout.isTTY) {
    process.stdout.write(bytes);
  } else {
    throw new InputError('--format raw would write binary to a terminal: redirect stdout or use --out FILE');
  }
  return EXIT_OK;
}
