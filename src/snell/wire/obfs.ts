/**
 * simple-obfs wrappers around the whole Snell byte stream (docs/snell.md §8). authkit wraps the client's
 * first bytes as OpenSnell and Surge do, and strips a wrapper from captured bytes before trial
 * authentication.
 */
import { randomBytes } from 'node:crypto';
import { DecodeError } from '../../shared/errors.js';
import { utf8 } from '../../shared/bytes.js';

export type ObfsMode = 'off' | 'http' | 'tls';
export const DEFAULT_OBFS_HOST: Record<Exclude<ObfsMode, 'off'>, string> = { http: 'bing.com', tls: 'cloudfront.net' };

export function wrapHttp(first: Uint8Array, host: string, random: (n: number) => Uint8Array = randomBytes): Uint8Array {
  const minor = random(2);
  const head =
    'GET / HTTP/1.1\r\n' +
    `Host: ${host}\r\n` +
    `User-Agent: curl/7.${16 + (minor[0]! % 60)}.${minor[1]! % 10}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${Buffer.from(random(16)).toString('base64')}\r\n` +
    `Content-Length: ${first.length}\r\n\r\n`;
  return Buffer.concat([utf8.encode(head), first]);
}

const HTTP_HEADER_END = Buffer.from('\r\n\r\n');

/** Everything after the request head is Snell: the Content-Length body and the raw stream after it. */
export function stripHttp(bytes: Uint8Array): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!looksLikeHttp(bytes)) throw new DecodeError('http obfs', 0, 'does not start with an HTTP GET request');
  const end = buf.indexOf(HTTP_HEADER_END);
  if (end < 0) throw new DecodeError('http obfs', bytes.length, 'truncated: no end of the request head (\\r\\n\\r\\n)');
  return bytes.subarray(end + HTTP_HEADER_END.length);
}

function looksLikeHttp(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x45 && bytes[2] === 0x54 && bytes[3] === 0x20;
}

// The fake ClientHello's fixed parts, as OpenSnell and Surge send them.
const CIPHER_SUITES = Buffer.from(
  'c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff',
  'hex',
);
const FIXED_EXTENSIONS = Buffer.from(
  '000b000403010002000a000a0008001d001700190018000d0020001e06010602060305010502050304010402040303010302030302010202020300160000' +
    '00170000',
  'hex',
);
/** Surge embeds at most this many Snell bytes in the ClientHello and sends the rest as application-data records. */
export const TLS_HELLO_DATA_CAP = 0x400;
const TLS_RECORD_CAP = 0x4000;
/** Offset of the Snell bytes in the ClientHello (inside the session_ticket extension). */
export const TLS_HELLO_DATA_OFFSET = 142;

export interface TlsHelloParts {
  unixTime: number;
  random: Uint8Array; // 28 bytes
  sessionId: Uint8Array; // 32 bytes
}

export function wrapTls(first: Uint8Array, host: string, parts?: Partial<TlsHelloParts>): Uint8Array {
  const unixTime = parts?.unixTime ?? Math.floor(Date.now() / 1000);
  const random = parts?.random ?? randomBytes(28);
  const sessionId = parts?.sessionId ?? randomBytes(32);
  const data = first.subarray(0, TLS_HELLO_DATA_CAP);
  const name = utf8.encode(host);
  const n = data.length;
  const h = name.length;
  const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
  const time = [(unixTime >>> 24) & 0xff, (unixTime >>> 16) & 0xff, (unixTime >>> 8) & 0xff, unixTime & 0xff];
  const hello = Buffer.concat([
    Uint8Array.from([0x16, 0x03, 0x01, ...be16(212 + n + h), 0x01, 0x00, ...be16(208 + n + h), 0x03, 0x03, ...time]),
    random,
    Uint8Array.of(0x20),
    sessionId,
    Uint8Array.from([...be16(CIPHER_SUITES.length)]),
    CIPHER_SUITES,
    Uint8Array.from([0x01, 0x00, ...be16(79 + n + h), 0x00, 0x23, ...be16(n)]),
    data,
    Uint8Array.from([0x00, 0x00, ...be16(h + 5), ...be16(h + 3), 0x00, ...be16(h)]),
    name,
    FIXED_EXTENSIONS,
  ]);
  const records: Uint8Array[] = [hello];
  for (let at = TLS_HELLO_DATA_CAP; at < first.length; at += TLS_RECORD_CAP) {
    const chunk = first.subarray(at, at + TLS_RECORD_CAP);
    records.push(Uint8Array.from([0x17, 0x03, 0x03, ...be16(chunk.length)]), chunk);
  }
  return Buffer.concat(records);
}

function looksLikeTls(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && bytes[0] === 0x16 && bytes[1] === 0x03 && bytes[2] === 0x01 && bytes[5] === 0x01;
}

/** The Snell bytes in the ClientHello, then those of any application-data records after it. */
export function stripTls(bytes: Uint8Array): Uint8Array {
  const what = 'tls obfs';
  if (!looksLikeTls(bytes)) throw new DecodeError(what, 0, 'does not start with a TLS ClientHello record (16 03 01 .. .. 01)');
  const helloEnd = 5 + ((bytes[3]! << 8) | bytes[4]!);
  if (bytes.length < TLS_HELLO_DATA_OFFSET) {
    throw new DecodeError(what, bytes.length, `truncated ClientHello: ${bytes.length} bytes, the data starts at ${TLS_HELLO_DATA_OFFSET}`);
  }
  const n = (bytes[140]! << 8) | bytes[141]!;
  if (TLS_HELLO_DATA_OFFSET + n > helloEnd) throw new DecodeError(what, 140, `embedded data length ${n} runs past the ClientHello`);
  const parts: Uint8Array[] = [bytes.subarray(TLS_HELLO_DATA_OFFSET, Math.min(TLS_HELLO_DATA_OFFSET + n, bytes.length))];
  for (let at = helloEnd; at + 5 <= bytes.length; ) {
    if (bytes[at] !== 0x17 || bytes[at + 1] !== 0x03 || bytes[at + 2] !== 0x03) {
      throw new DecodeError(what, at, 'expected an application-data record (17 03 03)');
    }
    const length = (bytes[at + 3]! << 8) | bytes[at + 4]!;
    parts.push(bytes.subarray(at + 5, Math.min(at + 5 + length, bytes.length)));
    at += 5 + length;
  }
  return Buffer.concat(parts);
}

export type ObfsChoice = ObfsMode | 'auto';

/** Removes the wrapper `mode` names; `auto` recognises one from the first bytes and leaves others alone. */
export function stripObfs(bytes: Uint8Array, mode: ObfsChoice): { bytes: Uint8Array; detected: ObfsMode } {
  const detected: ObfsMode = mode !== 'auto' ? mode : looksLikeHttp(bytes) ? 'http' : looksLikeTls(bytes) ? 'tls' : 'off';
  if (detected === 'http') return { bytes: stripHttp(bytes), detected };
  if (detected === 'tls') return { bytes: stripTls(bytes), detected };
  return { bytes, detected };
}

export function wrapObfs(first: Uint8Array, mode: ObfsMode, host?: string): Uint8Array {
  if (mode === 'off') return first;
  return mode === 'http' ? wrapHttp(first, host ?? DEFAULT_OBFS_HOST.http) : wrapTls(first, host ?? DEFAULT_OBFS_HOST.tls);
}
