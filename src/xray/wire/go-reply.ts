/**
 * An HTTP/1.x reply read the way Go's http.ReadResponse and its transfer code read it
 * (docs/xray-extauth.md §2.2), because what Go tolerates decides the verdict:
 * bare-LF line endings, Transfer-Encoding: chunked winning over Content-Length, a body read
 * until close when neither is given, and the same errors where Go gives up.
 */
import { ByteReader, UnexpectedEof } from './byte-reader.js';
import { canonicalHeaderKey } from './go-request.js';

/** Transport.MaxResponseHeaderBytes' default. */
export const MAX_HEAD_BYTES = 10 << 20;

export class GoProtocolError extends Error {}

export interface ReplyHead {
  proto: string;
  status: number;
  /** Canonical names, in the order received; repeated names stay repeated. */
  headers: [string, string][];
}

export function headerValue(head: Pick<ReplyHead, 'headers'>, name: string): string | undefined {
  return head.headers.find(([n]) => n === name)?.[1];
}

function headerValues(head: Pick<ReplyHead, 'headers'>, name: string): string[] {
  return head.headers.filter(([n]) => n === name).map(([, v]) => v);
}

/** The status line and headers; undefined when the connection ended before a byte of a reply. */
export async function readReplyHead(reader: ByteReader): Promise<ReplyHead | undefined> {
  let budget = MAX_HEAD_BYTES;
  const statusLine = await reader.readLine(budget);
  if (statusLine === undefined) return undefined;
  budget -= statusLine.length;
  const head: ReplyHead = { ...parseStatusLine(statusLine), headers: [] };
  for (;;) {
    const line = await reader.readLine(budget);
    if (line === undefined) throw new UnexpectedEof();
    if (line === '') break;
    budget -= line.length;
    if (budget <= 0) throw new GoProtocolError(`server response headers exceeded ${MAX_HEAD_BYTES} bytes; aborted`);
    const [name, value] = parseHeaderLine(line);
    head.headers.push([canonicalHeaderKey(name), value]);
  }
  return head;
}

/** A status line as http.ReadResponse reads it: the protocol and a three-digit code. */
export function parseStatusLine(line: string): { proto: string; status: number } {
  const space = line.indexOf(' ');
  if (space < 0) throw new GoProtocolError(`malformed HTTP response ${JSON.stringify(line)}`);
  const proto = line.slice(0, space);
  const code = line.slice(space + 1).replace(/^ +/, '').split(' ', 1)[0]!;
  if (code.length !== 3 || !/^\d{3}$/.test(code)) throw new GoProtocolError(`malformed HTTP status code ${JSON.stringify(code)}`);
  if (!/^HTTP\/\d\.\d$/.test(proto)) throw new GoProtocolError(`malformed HTTP version ${JSON.stringify(proto)}`);
  return { proto, status: Number(code) };
}

/** A header line as textproto reads it: a token, a colon, the value without surrounding blanks; the name as sent. */
export function parseHeaderLine(line: string): [string, string] {
  const colon = line.indexOf(':');
  const name = colon < 0 ? '' : line.slice(0, colon);
  if (colon <= 0 || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new GoProtocolError(`malformed MIME header line: ${line.slice(0, 64)}`);
  return [name, line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')];
}

export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'until-close' };

/** How the body is delimited (Go's fixLength and parseTransferEncoding), or why Go refuses the reply. */
export function replyFraming(head: ReplyHead, method: string): Framing {
  const { status } = head;
  if ((status >= 100 && status < 200) || status === 204 || status === 304 || method === 'HEAD') return { kind: 'none' };
  const http11 = head.proto !== 'HTTP/1.0';
  const encodings = headerValues(head, 'Transfer-Encoding');
  if (http11 && encodings.length > 0) {
    if (encodings.length > 1) throw new GoProtocolError(`too many transfer encodings: ${JSON.stringify(encodings)}`);
    if (encodings[0]!.toLowerCase() !== 'chunked') throw new GoProtocolError(`unsupported transfer encoding: ${JSON.stringify(encodings[0])}`);
    return { kind: 'chunked' };
  }
  const lengths = [...new Set(headerValues(head, 'Content-Length').map((v) => v.trim()))];
  if (lengths.length > 1) throw new GoProtocolError(`http: message cannot contain multiple Content-Length headers; got ${JSON.stringify(lengths)}`);
  if (lengths.length === 1) {
    if (!/^\d{1,18}$/.test(lengths[0]!)) throw new GoProtocolError(`bad Content-Length ${JSON.stringify(lengths[0])}`);
    return { kind: 'length', length: Number(lengths[0]) };
  }
  return { kind: 'until-close' };
}

/** Whether the connection can carry another request after this reply's body. */
export function keepsAlive(head: ReplyHead, framing: Framing): boolean {
  if (framing.kind === 'until-close') return false;
  const connection = headerValues(head, 'Connection').join(',').toLowerCase().split(',').map((t) => t.trim());
  if (connection.includes('close')) return false;
  return head.proto !== 'HTTP/1.0' || connection.includes('keep-alive');
}

const READ_SIZE = 64 * 1024;

/** The body's bytes as they arrive; throws UnexpectedEof or GoProtocolError where Go's reader would fail. */
export async function* readReplyBody(reader: ByteReader, framing: Framing): AsyncGenerator<Buffer> {
  if (framing.kind === 'none') return;
  if (framing.kind === 'until-close') {
    for (let chunk = await reader.readSome(READ_SIZE); chunk; chunk = await reader.readSome(READ_SIZE)) yield chunk;
    return;
  }
  if (framing.kind === 'length') {
    let left = framing.length;
    while (left > 0) {
      const chunk = await reader.readSome(Math.min(left, READ_SIZE));
      if (!chunk) throw new UnexpectedEof();
      left -= chunk.length;
      yield chunk;
    }
    return;
  }
  yield* readChunked(reader);
}

async function* readChunked(reader: ByteReader): AsyncGenerator<Buffer> {
  for (;;) {
    const line = await reader.readLine(4096);
    if (line === undefined) throw new UnexpectedEof();
    const size = chunkSize(line);
    if (size === 0) {
      // Trailers: header lines up to an empty one.
      for (let trailer = await reader.readLine(MAX_HEAD_BYTES); trailer !== ''; trailer = await reader.readLine(MAX_HEAD_BYTES)) {
        if (trailer === undefined) throw new UnexpectedEof();
      }
      return;
    }
    let left = size;
    while (left > 0) {
      const chunk = await reader.readSome(Math.min(left, READ_SIZE));
      if (!chunk) throw new UnexpectedEof();
      left -= chunk.length;
      yield chunk;
    }
    // Go wants exactly CRLF after a chunk's data.
    if ((await reader.readExact(2)).toString('latin1') !== '\r\n') throw new GoProtocolError('malformed chunked encoding');
  }
}

/** A chunk-size line: trailing whitespace and any extension dropped, at most 16 hex digits. */
export function chunkSize(line: string): number {
  const text = line.replace(/[ \t\r\n]+$/, '').split(';', 1)[0]!.replace(/[ \t]+$/, '');
  if (text === '') throw new GoProtocolError('empty hex number for chunk length');
  if (!/^[0-9a-fA-F]+$/.test(text)) throw new GoProtocolError('invalid byte in chunk length');
  if (text.length > 16) throw new GoProtocolError('http chunk length too large');
  const size = Number.parseInt(text, 16);
  if (!Number.isSafeInteger(size)) throw new GoProtocolError('http chunk length too large');
  return size;
}
