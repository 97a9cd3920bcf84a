/**
 * The bytes of an HTTP/1.1 request as Go's net/http writes them (docs/xray-extauth.md, "The
 * client"): the request line, `Host`, `User-Agent: Go-http-client/1.1`, `Content-Length` (never
 * on a bodiless GET), then the headers the caller set, sorted by canonical name, then the
 * transport's own `Accept-Encoding: gzip`. No `Connection` header. Every xray-sim mode and the
 * load engine send these bytes; nothing else writes an ExtAuth request.
 */
import { hostHeader, requestUri, type GoUrl } from './go-url.js';

export const GO_USER_AGENT = 'Go-http-client/1.1';

/** RFC 7230 tchar: what Go accepts in a header name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * textproto.CanonicalMIMEHeaderKey: the first letter and each letter after '-' upper-cased, the
 * rest lower-cased; a name with a byte outside the token set is returned as it is.
 */
export function canonicalHeaderKey(name: string): string {
  // One pass: most names a tap or a client reads are canonical already and come back as they
  // are, with no regular expression and no new string (a tap reads every header of every reply).
  let canonical = true;
  let wordStart = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x80 || TOKEN_BYTES[c] === 0) return name;
    if (wordStart ? c >= 0x61 && c <= 0x7a : c >= 0x41 && c <= 0x5a) canonical = false;
    wordStart = c === 0x2d;
  }
  if (canonical) return name;
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** 1 for each tchar (TOKEN's set), by byte. */
const TOKEN_BYTES = Uint8Array.from({ length: 128 }, (_, c) => (TOKEN.test(String.fromCharCode(c)) ? 1 : 0));

export class GoRequestError extends Error {}

/** The transport's checks before it writes anything: a name must be a token, a value free of control bytes. */
function validate(name: string, value: string): void {
  if (!TOKEN.test(name)) throw new GoRequestError(`net/http: invalid header field name ${goQuote(name)}`);
  // httpguts.ValidHeaderFieldValue: no CTL except HTAB (obs-text is allowed).
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new GoRequestError(`net/http: invalid header field value for ${goQuote(name)}`);
}

function goQuote(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface GoRequest {
  method: 'POST' | 'GET';
  url: GoUrl;
  /** req.Header as the caller set it (Header.Set: canonical names, the last value wins). */
  header: Map<string, string>;
  /** undefined: no body (a redirect's GET). */
  body?: Buffer;
  /** The Host header when it differs from the URL's authority (kept across a relative redirect). */
  host?: string;
}

/** Header.Set for each pair in order: names canonicalised, a later value replaces an earlier one. */
export function goHeader(pairs: readonly (readonly [string, string])[]): Map<string, string> {
  const header = new Map<string, string>();
  for (const [name, value] of pairs) header.set(canonicalHeaderKey(name), value);
  return header;
}

/** Headers Request.write takes from elsewhere, never from req.Header. */
const WRITTEN_ELSEWHERE = new Set(['Host', 'User-Agent', 'Content-Length', 'Transfer-Encoding', 'Trailer']);

/** The header lines in the order they go on the wire; throws GoRequestError where Go refuses to send. */
export function goHeaderLines(request: GoRequest): [string, string][] {
  for (const [name, value] of request.header) validate(name, value);
  const lines: [string, string][] = [['Host', request.host ?? hostHeader(request.url)]];
  const agent = request.header.get('User-Agent');
  // A User-Agent set to "" means none at all.
  if (agent !== '') lines.push(['User-Agent', agent ?? GO_USER_AGENT]);
  const length = request.body?.length ?? 0;
  if (length > 0 || (request.body !== undefined && request.method !== 'GET')) lines.push(['Content-Length', String(length)]);
  const sorted = [...request.header].filter(([name]) => !WRITTEN_ELSEWHERE.has(name)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, value] of sorted) lines.push([name, value.replace(/^[ \t]+|[ \t]+$/g, '')]);
  if (asksGzip(request)) lines.push(['Accept-Encoding', 'gzip']);
  return lines;
}

/** The transport adds Accept-Encoding: gzip (and decodes the reply) unless the caller set Accept-Encoding or Range. */
export function asksGzip(request: Pick<GoRequest, 'header'>): boolean {
  return !request.header.has('Accept-Encoding') && !request.header.has('Range');
}

/** The whole request as it goes on the wire over HTTP/1.1. */
export function goRequestBytes(request: GoRequest): Buffer {
  let head = `${request.method} ${requestUri(request.url)} HTTP/1.1\r\n`;
  for (const [name, value] of goHeaderLines(request)) head += `${name}: ${value}\r\n`;
  const headBytes = Buffer.from(`${head}\r\n`, 'utf8');
  return request.body && request.body.length > 0 ? Buffer.concat([headBytes, request.body]) : headBytes;
}
