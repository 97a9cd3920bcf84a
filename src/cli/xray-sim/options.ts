/**
 * xray-sim's flags as the proxy's configuration: the flags every mode shares, checked once, and
 * the connection a run plays. Its own module so the modes (one-shot, session, conformance, load)
 * import it without importing each other.
 */
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { InputError } from '../../shared/errors.js';
import type { ConnectionFacts, Dialect, EventType } from '../../xray/wire/dialect.js';
import { dialectNamed } from '../../xray/wire/dialects/index.js';
import { newConnectionId } from '../../xray/client.js';
import { xrayCredential } from '../../xray/wire/credential.js';
import type { TlsTrust } from '../../xray/transport.js';
import { parseGoUrl } from '../../xray/wire/go-url.js';
import type { LoadFlags } from '../load.js';
import type { ConformanceFlags } from '../conformance.js';
import { log, parseHeader, readBinaryFile, readSecret, secretOnCommandLine } from '../io.js';

export interface XrayLoadFlags extends LoadFlags {
  sessions?: string;
  arrival?: string;
  meanDuration?: string;
  users?: string;
  ipsPerUser?: string;
}

export interface SimFlags extends XrayLoadFlags, ConformanceFlags {
  url?: string;
  unixSocket?: string;
  dialect: string;
  event: EventType;
  credential?: string;
  sourceIp: string;
  sourcePort?: number;
  localIp: string;
  localPort: number;
  inboundTag?: string;
  email?: string;
  level?: number;
  tx: string;
  header: string[];
  secret?: string;
  secretEnv?: string;
  secretFile?: string;
  timeout?: number;
  kickOnDeny?: boolean;
  session?: boolean;
  heartbeat?: number;
  ttl: number;
  connections: number;
  ips: number;
  stagger: number;
  showSecrets?: boolean;
  cacert?: string;
  insecure?: boolean;
  burst: number;
}

export interface PreparedEvent {
  url: string;
  dialect: Dialect;
  secret?: string;
  headers: [string, string][];
  timeoutSeconds: number;
  kickOnDeny: boolean;
  /** --cacert or --insecure, for an https backend. */
  tls?: TlsTrust;
  notes: string[];
}

/** The flags every xray-sim mode shares, checked once. */
export function prepareEvent(flags: SimFlags): PreparedEvent {
  if (flags.url === undefined) throw new InputError('--url is required (the backend URL the proxy POSTs to)');
  let url: URL;
  try {
    url = new URL(flags.url);
  } catch {
    throw new InputError(`--url: not a URL: ${flags.url}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`--url: expected http:// or https://, got ${url.protocol}`);
  try {
    parseGoUrl(flags.url);
  } catch (error) {
    throw new InputError(`--url: Go cannot use this URL: ${(error as Error).message}`);
  }
  const dialect = dialectNamed(flags.dialect);
  const notes: string[] = [];
  const headers = flags.header.map(parseHeader);
  const secret = readSecret({ value: flags.secret, file: flags.secretFile, env: flags.secretEnv }, 'secret');
  if (flags.secret !== undefined) log(`note: ${secretOnCommandLine('secret')}`);
  if ((secret !== undefined || headers.length > 0) && dialect.secret === 'none' && !dialect.customHeaders) {
    throw new InputError(`the ${dialect.name} dialect sends no secret and no custom headers (protect the backend with a URL token or network ACLs)`);
  }
  if (headers.length > 0 && !dialect.customHeaders) notes.push(`the ${dialect.name} dialect has no custom headers; sending them anyway`);
  const timeoutSeconds = flags.timeout ?? dialect.timeout.default;
  if (flags.timeout !== undefined && dialect.timeout.fixed && flags.timeout !== dialect.timeout.default) {
    notes.push(`${dialect.name} hard-codes a ${dialect.timeout.default} s timeout; using ${flags.timeout} s as asked`);
  }
  if (timeoutSeconds === 0) notes.push('--timeout 0: no timeout on authorization and heartbeat, as Xray does; a hung backend hangs this too');
  const tls = tlsTrust(flags, url.protocol === 'https:', notes);
  return { url: flags.url, dialect, secret, headers, timeoutSeconds, kickOnDeny: flags.kickOnDeny ?? dialect.kickOnDenyDefault, tls, notes };
}

/** --cacert FILE (a private CA) or --insecure (no verification), for an https:// backend only. */
function tlsTrust(flags: SimFlags, https: boolean, notes: string[]): TlsTrust | undefined {
  if (flags.cacert === undefined && !flags.insecure) return undefined;
  if (!https) throw new InputError(`${flags.insecure ? '--insecure' : '--cacert'} is for an https:// --url`);
  if (flags.cacert !== undefined && flags.insecure) throw new InputError('--cacert and --insecure exclude each other');
  if (flags.insecure) {
    notes.push('--insecure: the backend\'s certificate is not verified (Xray verifies it against the system roots and has no such option)');
    return { rejectUnauthorized: false };
  }
  const ca = readBinaryFile(flags.cacert!, '--cacert');
  if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new InputError(`--cacert ${flags.cacert}: not a PEM certificate`);
  return { ca };
}

export function connectionFacts(flags: SimFlags, dialect: Dialect): { facts: ConnectionFacts; notes: string[] } {
  // Under --load a users file names the credentials instead.
  if (flags.credential === undefined && !(flags.load && flags.users !== undefined)) throw new InputError('--credential is required');
  const notes: string[] = [];
  let credential = flags.credential ?? '';
  if (dialect.reply === 'extauth-user' && flags.credential !== undefined) {
    const parsed = xrayCredential(flags.credential);
    credential = parsed.credential;
    if (parsed.note) notes.push(parsed.note);
  }
  for (const [flag, ip] of [['--source-ip', flags.sourceIp], ['--local-ip', flags.localIp]] as const) {
    if (isIP(ip) === 0) notes.push(`${flag} ${ip} is not an IP address (as on a Unix-socket inbound); sent as given`);
  }
  if (!/^\d+$/.test(flags.tx) || BigInt(flags.tx) > 2n ** 64n - 1n) throw new InputError('--tx: expected an integer 0..18446744073709551615');
  return {
    facts: {
      credential, connectionId: newConnectionId(), protocol: 'vless', inboundTag: flags.inboundTag,
      sourceIp: flags.sourceIp, sourcePort: flags.sourcePort ?? randomInt(32768, 61000),
      localIp: flags.localIp, localPort: flags.localPort, email: flags.email, level: flags.level, tx: flags.tx,
    },
    notes,
  };
}

