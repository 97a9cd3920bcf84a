/**
 * HTTP/1.1 read from a copy of a connection's bytes, for the tap, as they pass: the bytes
 * themselves are forwarded untouched elsewhere (tap/relay.ts). Synchronous and incremental (a
 * chunk in, whole messages out), so reading costs the relay no promise per line. Lines, framing
 * and chunk sizes follow Go's readers, with xray-sim's own functions (wire/go-reply.ts), so the
 * tap reaches the verdict Go would.
 */
import { chunkSize, GoProtocolError, MAX_HEAD_BYTES, parseHeaderLine, parseStatusLine, replyFraming, type Framing, type ReplyHead } from '../wire/go-reply.js';
import { canonicalHeaderKey } from '../wire/go-request.js';

export interface SeenRequest {
  method: string;
  target: string;
  /** As received: names in their case, in order. */
  headers: [string, string][];
  body: Buffer;
  /** The body was longer than the keep limit; `body` is its beginning. */
  truncated: boolean;
}

export interface SeenReply {
  /** Status, and the headers the verdict reads (Content-Type, Content-Encoding, Location, framing), by Go's canonical names. */
  head: ReplyHead;
  /** As received, names in their case (`head.headers` has Go's canonical names). */
  rawHeaders: [string, string][];
  body: Buffer;
  truncated: boolean;
}

type Body = { kind: 'length'; left: number } | { kind: 'chunk-size' } | { kind: 'chunk-data'; left: number } | { kind: 'chunk-end' } | { kind: 'trailers' } | { kind: 'until-close' };

/** A message's head, read; its body still coming. */
interface Started {
  firstLine: string;
  headers: [string, string][];
  body: Body | undefined;
  kept: Buffer[];
  keptBytes: number;
  truncated: boolean;
}

/**
 * One direction of a connection. `framing(firstLine, headers)` says how the message's body is
 * delimited (it differs for requests and replies), or undefined to pass over the message (a 1xx).
 */
export class Http1Reader {
  private pending: Buffer = Buffer.alloc(0);
  private message: Started | undefined;

  constructor(
    private readonly keep: number,
    private readonly framing: (firstLine: string, headers: [string, string][]) => Framing | undefined,
    private readonly onMessage: (message: Started) => void,
  ) {}

  /** Reads what the chunk completes; throws GoProtocolError where Go's reader would fail. */
  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.step());
  }

  /** The connection ended: a body read until close is whole; anything else cut short is dropped. */
  end(): void {
    if (this.message?.body?.kind === 'until-close') this.finish();
  }

  /** A message has begun and not ended. */
  get midMessage(): boolean {
    return this.message !== undefined || this.pending.length > 0;
  }

  /** The message whose head is read and whose body is still coming, as far as it has come. */
  get partial(): Started | undefined {
    return this.message;
  }

  private step(): boolean {
    if (!this.message) return this.readHead();
    const body = this.message.body!;
    switch (body.kind) {
      case 'length':
      case 'chunk-data': {
        if (this.pending.length === 0) return false;
        const part = this.take(Math.min(body.left, this.pending.length));
        this.retain(part);
        body.left -= part.length;
        if (body.left > 0) return false;
        if (body.kind === 'length') this.finish();
        else this.message.body = { kind: 'chunk-end' };
        return true;
      }
      case 'chunk-end': {
        if (this.pending.length < 2) return false;
        if (this.take(2).toString('latin1') !== '\r\n') throw new GoProtocolError('malformed chunked encoding');
        this.message.body = { kind: 'chunk-size' };
        return true;
      }
      case 'chunk-size': {
        const line = this.line(4096);
        if (line === undefined) return false;
        const size = chunkSize(line);
        this.message.body = size === 0 ? { kind: 'trailers' } : { kind: 'chunk-data', left: size };
        return true;
      }
      case 'trailers': {
        const line = this.line(MAX_HEAD_BYTES);
        if (line === undefined) return false;
        if (line === '') this.finish();
        return true;
      }
      case 'until-close':
        if (this.pending.length > 0) this.retain(this.take(this.pending.length));
        return false;
    }
  }

  /** The head, whole (Go reads it whole before the body): its lines, and the body's framing. */
  private readHead(): boolean {
    const end = headEnd(this.pending);
    if (end < 0) {
      if (this.pending.length > MAX_HEAD_BYTES) throw new GoProtocolError(`headers exceeded ${MAX_HEAD_BYTES} bytes`);
      return false;
    }
    const lines = this.take(end).toString('latin1').split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    const firstLine = lines[0]!;
    const headers = lines.slice(1).filter((l) => l !== '').map(parseHeaderLine);
    const framing = this.framing(firstLine, headers);
    if (!framing) return true;
    this.message = { firstLine, headers, body: undefined, kept: [], keptBytes: 0, truncated: false };
    if (framing.kind === 'none') this.finish();
    else this.message.body = framing.kind === 'length' ? { kind: 'length', left: framing.length } : framing.kind === 'chunked' ? { kind: 'chunk-size' } : { kind: 'until-close' };
    if (this.message?.body?.kind === 'length' && this.message.body.left === 0) this.finish();
    return true;
  }

  private finish(): void {
    const message = this.message!;
    this.message = undefined;
    this.onMessage(message);
  }

  private retain(part: Buffer): void {
    const message = this.message!;
    const room = this.keep - message.keptBytes;
    if (part.length > room) message.truncated = true;
    if (room <= 0) return;
    // A copy: the chunk's memory belongs to the socket's reads.
    const kept = Buffer.from(part.subarray(0, room));
    message.kept.push(kept);
    message.keptBytes += kept.length;
  }

  private take(n: number): Buffer {
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** A line without its LF (and CR), or undefined until it is whole. */
  private line(limit: number): string | undefined {
    const lf = this.pending.indexOf(0x0a);
    if (lf < 0) {
      if (this.pending.length > limit) throw new GoProtocolError(`a line over ${limit} bytes`);
      return undefined;
    }
    const text = this.take(lf + 1).toString('latin1', 0, lf);
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  }
}

/**
 * Where the head ends, its blank line included, or -1: the first empty line, each line ending in
 * LF with or without a CR before it, as Go's textproto reads them (so `\n\r\n` ends a head too).
 */
function headEnd(bytes: Buffer): number {
  for (let lf = bytes.indexOf(0x0a); lf >= 0; lf = bytes.indexOf(0x0a, lf + 1)) {
    if (bytes[lf + 1] === 0x0a) return lf + 2;
    if (bytes[lf + 1] === 0x0d && bytes[lf + 2] === 0x0a) return lf + 3;
  }
  return -1;
}

/** A request whose body is still coming (a reply came first: a 413 that does not read it), as far as it came. */
export function partialRequest(reader: Http1Reader): SeenRequest | undefined {
  const m = reader.partial;
  if (!m) return undefined;
  const [method, target] = m.firstLine.split(' ') as [string, string];
  return { method, target, headers: m.headers, body: Buffer.concat(m.kept, m.keptBytes), truncated: true };
}

/** Requests: the request line and the body's framing (no length: no body). */
export function requestReader(keep: number, onRequest: (request: SeenRequest) => void): Http1Reader {
  return new Http1Reader(keep, (firstLine, headers) => {
    const [method, target, proto] = firstLine.split(' ');
    if (!method || !target || !proto?.startsWith('HTTP/1.')) throw new GoProtocolError(`not an HTTP/1.x request line: ${JSON.stringify(firstLine.slice(0, 64))}`);
    const framing = replyFraming({ proto, status: 200, headers: framingHeaders(headers) }, method);
    return framing.kind === 'until-close' ? { kind: 'none' } : framing;
  }, (m) => {
    const [method, target] = m.firstLine.split(' ') as [string, string];
    onRequest({ method, target, headers: m.headers, body: Buffer.concat(m.kept, m.keptBytes), truncated: m.truncated });
  });
}

/** Replies, framed by the method of the request each answers (`methodOfNext`); 1xx passed over as Go does. */
export function replyReader(keep: number, methodOfNext: () => string, onReply: (reply: SeenReply) => void): Http1Reader {
  return new Http1Reader(keep, (firstLine, headers) => {
    const { proto, status } = parseStatusLine(firstLine);
    if (status >= 100 && status < 200 && status !== 101) return undefined;
    return replyFraming({ proto, status, headers: framingHeaders(headers) }, methodOfNext());
  }, (m) => {
    const { proto, status } = parseStatusLine(m.firstLine);
    // The verdict reads a few headers by Go's canonical name: only those are canonicalised.
    const head: ReplyHead = { proto, status, headers: m.headers.filter(([name]) => VERDICT_HEADERS.has(name.toLowerCase())).map(([name, value]) => [canonicalHeaderKey(name), value]) };
    onReply({ head, rawHeaders: m.headers, body: Buffer.concat(m.kept, m.keptBytes), truncated: m.truncated });
  });
}

const VERDICT_HEADERS = new Set(['content-type', 'content-encoding', 'location', 'content-length', 'transfer-encoding']);

/** Go's canonical names of the headers that frame a body (the rest are not needed to frame it). */
function framingHeaders(headers: [string, string][]): [string, string][] {
  return headers.filter(([name]) => name.length === 14 || name.length === 17).map(([name, value]) => [canonicalHeaderKey(name), value]);
}
