/**
 * The load client's HTTP/1.1 reply reader: status, framing (Content-Length or chunked) and the
 * few headers a classifier may need, read from the bytes of a connection's read buffer by offset.
 * Replies repeat under load (the Date header changes once a second), so a head that matches the
 * last one byte for byte is not parsed again: the common reply costs a search for the blank line,
 * one compare and a view of the body.
 */

export interface Http1Reply {
  status: number;
  /** Lower-cased names; only the ones a classifier may need. */
  contentType?: string;
  contentEncoding?: string;
  /** A redirect's target (the Xray target follows it as Go does). */
  location?: string;
  /**
   * A view of the connection's read buffer: valid only while the send callback runs (the next
   * read overwrites it); copy it to keep it.
   */
  body: Buffer;
}

export interface ParsedReply {
  reply: Http1Reply;
  /** The offset in the bytes given where the reply ends. */
  consumed: number;
  close: boolean;
  /** A 1xx other than 101: not the reply yet. */
  interim?: boolean;
}

interface ParsedHead {
  status: number;
  contentLength: number;
  chunked: boolean;
  close: boolean;
  contentType?: string;
  contentEncoding?: string;
  location?: string;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const LF2 = Buffer.from('\n\n');
const LF_CRLF = Buffer.from('\n\r\n');
const EMPTY = Buffer.alloc(0);

/** The last head parsed, as bytes, and what it said. */
let lastHead: { bytes: Buffer; parsed: ParsedHead } | undefined;

/** One reply from the front of `data`. */
export function parseReply(data: Buffer, maxBytes: number): ParsedReply | 'incomplete' | string {
  return readReply(data, 0, maxBytes);
}

/**
 * One reply from `data` at `start` (data ends where the bytes read end): the reply with the offset
 * where it ends, 'incomplete', or why the bytes are not HTTP/1.1.
 */
export function readReply(data: Buffer, start: number, maxBytes: number): ParsedReply | 'incomplete' | string {
  let headEnd = data.indexOf(CRLF2, start);
  let bodyStart = headEnd + 4;
  if (headEnd < 0) {
    // Go accepts bare-LF line endings: a head may end in "\n\n" or "\n\r\n".
    const lf = data.indexOf(LF2, start);
    const mixed = data.indexOf(LF_CRLF, start);
    headEnd = lf < 0 ? mixed : mixed < 0 ? lf : Math.min(lf, mixed);
    if (headEnd < 0) return data.length - start > 65536 ? 'reply headers over 64 KiB' : 'incomplete';
    bodyStart = headEnd + (headEnd === lf ? 2 : 3);
  }
  const length = headEnd - start;
  const cached = lastHead;
  let head: ParsedHead | string;
  if (cached && cached.bytes.length === length && data.compare(cached.bytes, 0, length, start, headEnd) === 0) {
    head = cached.parsed;
  } else {
    head = parseHead(data.toString('latin1', start, headEnd));
    if (typeof head === 'string') return head;
    lastHead = { bytes: Buffer.from(data.subarray(start, headEnd)), parsed: head };
  }
  return framedReply(data, bodyStart, maxBytes, head);
}

function parseHead(head: string): ParsedHead | string {
  if (!head.startsWith('HTTP/1.')) return 'the backend answered something that is not HTTP/1.x';
  const status = Number(head.slice(9, 12));
  if (!(status >= 100 && status <= 999)) return 'a reply with no valid status code';
  let contentLength = -1;
  let chunked = false;
  let close = head.startsWith('HTTP/1.0');
  let contentType: string | undefined;
  let contentEncoding: string | undefined;
  let location: string | undefined;
  const lines = head.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') contentLength = Number(value);
    else if (name === 'transfer-encoding') chunked = value.toLowerCase().includes('chunked');
    else if (name === 'connection') close = value.toLowerCase() === 'close';
    else if (name === 'content-type') contentType ??= value;
    else if (name === 'content-encoding') contentEncoding ??= value;
    else if (name === 'location') location ??= value;
  }
  return { status, contentLength, chunked, close, contentType, contentEncoding, location };
}

function framedReply(data: Buffer, bodyStart: number, maxBytes: number, head: ParsedHead): ParsedReply | 'incomplete' | string {
  const { status, contentLength, chunked, close, contentType, contentEncoding, location } = head;
  if (status === 101) return 'the backend switched protocols (101): not an HTTP/1.1 reply';
  if (status >= 100 && status < 200) return { reply: { status, body: EMPTY }, consumed: bodyStart, close: false, interim: true };
  if (status === 204 || status === 304) return { reply: { status, contentType, contentEncoding, location, body: EMPTY }, consumed: bodyStart, close };
  if (chunked) return readChunked(data, bodyStart, maxBytes, { status, contentType, contentEncoding, location }, close);
  if (contentLength < 0) return 'a reply without Content-Length or chunked framing (read-until-close is not supported under load)';
  if (!Number.isSafeInteger(contentLength) || contentLength > maxBytes) return `a reply body of ${contentLength} bytes (limit ${maxBytes})`;
  if (data.length < bodyStart + contentLength) return 'incomplete';
  const body = data.subarray(bodyStart, bodyStart + contentLength);
  return { reply: { status, contentType, contentEncoding, location, body }, consumed: bodyStart + contentLength, close };
}

function readChunked(data: Buffer, start: number, maxBytes: number, head: Omit<Http1Reply, 'body'>, close: boolean): ParsedReply | 'incomplete' | string {
  const parts: Buffer[] = [];
  let length = 0;
  let at = start;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at, 'latin1');
    if (lineEnd < 0) return 'incomplete';
    const size = parseInt(data.toString('latin1', at, lineEnd).split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size) || size < 0) return 'a chunked reply with a bad chunk size';
    if (size === 0) {
      // Trailers (rare) end with an empty line like the headers.
      const blank = data.indexOf('\r\n', lineEnd + 2, 'latin1');
      if (blank < 0) return 'incomplete';
      const trailerEnd = blank === lineEnd + 2 ? blank + 2 : data.indexOf(CRLF2, lineEnd) + 4;
      if (trailerEnd < 4) return 'incomplete';
      const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      return { reply: { ...head, body }, consumed: trailerEnd, close };
    }
    length += size;
    if (length > maxBytes) return `a reply body over ${maxBytes} bytes`;
    if (data.length < lineEnd + 2 + size + 2) return 'incomplete';
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}
