/**
 * The load engine's HTTP/1.1 client: pre-built request bytes over keep-alive connections
 * (TCP, TLS or a Unix socket), optional pipelining, Content-Length and chunked replies. It is
 * not a general client: it exists because a request's client CPU decides the ceiling on a
 * 2-core machine (docs/load-engine.md §3: undici request() ~16 µs, a raw socket ~8.5 µs). The
 * one-shot commands keep undici.
 */
import net from 'node:net';
import tls from 'node:tls';
import { describeSocketError } from '../shared/net-errors.js';

export interface Http1Reply {
  status: number;
  /** Lower-cased names; only the ones a classifier may need. */
  contentType?: string;
  contentEncoding?: string;
  /** A redirect's target (the Xray target follows it as Go does). */
  location?: string;
  body: Buffer;
}

export type Http1Outcome = { reply: Http1Reply } | { failure: 'timeout' | 'network-error'; reason: string };

export interface Http1PoolOptions {
  url: URL;
  unixSocket?: string;
  maxConnections: number;
  /** Requests in flight per connection. */
  pipelining: number;
  /** Per request unless send() says otherwise; 0 = none. */
  timeoutMs: number;
  /** For open(): how long to wait for the first connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Replies larger than this end the connection (a load run must not buffer without bound). */
  maxReplyBytes?: number;
  /** For https: a private CA, or no verification. */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
}

interface Pending {
  done: (outcome: Http1Outcome) => void;
  /** performance.now() after which the request times out; Infinity for none. */
  deadlineMs: number;
  timeoutMs: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const LF2 = Buffer.from('\n\n');
const LF_CRLF = Buffer.from('\n\r\n');

class Connection {
  readonly pending: Pending[] = [];
  private buffer: Buffer | undefined;
  dead = false;
  /** Slots of this connection currently in the pool's free list. */
  constructor(readonly socket: net.Socket, private readonly pool: Http1Pool) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail('network-error', describeSocketError(error)));
    socket.on('close', () => this.fail('network-error', 'the backend closed the connection'));
  }

  write(request: Buffer, pending: Pending): void {
    this.pending.push(pending);
    this.socket.write(request);
  }

  fail(failure: 'timeout' | 'network-error', reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    this.pool.forget(this);
    const pending = this.pending.splice(0);
    for (const p of pending) p.done({ failure, reason });
  }

  private receive(chunk: Buffer): void {
    let data = this.buffer ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.buffer = undefined;
    while (data.length > 0 && !this.dead) {
      const parsed = parseReply(data, this.pool.maxReplyBytes);
      if (parsed === 'incomplete') {
        this.buffer = data;
        return;
      }
      if (typeof parsed === 'string') {
        this.fail('network-error', parsed);
        return;
      }
      data = data.subarray(parsed.consumed);
      // 100 Continue, 103 Early Hints: the final reply follows.
      if (parsed.interim) continue;
      const pending = this.pending.shift();
      if (!pending) {
        this.fail('network-error', 'the backend sent a reply to no request');
        return;
      }
      if (parsed.close) {
        // Connection: close: this reply is the last; later pipelined requests fail like Go's.
        // The connection leaves the pool first, so a next send may open a new one.
        this.fail('network-error', 'the backend closed the connection (Connection: close)');
        pending.done({ reply: parsed.reply });
        return;
      }
      this.pool.release(this);
      pending.done({ reply: parsed.reply });
    }
  }
}

export class Http1Pool {
  private readonly connections = new Set<Connection>();
  /** One entry per free request slot; dead connections are skipped when popped. */
  private readonly free: Connection[] = [];
  /**
   * Timeouts: one timer, set for the earliest deadline among the connections' oldest requests, so a
   * timeout is recorded within a timer tick of its deadline, and a busy run wakes for it about once
   * per timeout rather than on a fixed sweep (a 5 ms sweep cost 3 % of the client's CPU).
   */
  private sweep: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;
  readonly maxReplyBytes: number;

  constructor(private readonly options: Http1PoolOptions) {
    this.maxReplyBytes = options.maxReplyBytes ?? 1 << 20;
  }

  /** Opens one connection, so an unreachable target fails now with one clear reason. */
  async open(): Promise<void> {
    const connection = this.connect();
    const limitMs = this.options.connectTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const socket = connection.socket;
      const timer = setTimeout(() => {
        connection.fail('timeout', 'connect timeout');
        reject(new Error(`cannot connect to ${this.describeTarget()}: no connection within ${limitMs / 1000} s`));
      }, limitMs);
      const onError = (error: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(new Error(`cannot connect to ${this.describeTarget()}: ${describeSocketError(error)}`));
      };
      socket.once('error', onError);
      socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve();
      });
    });
  }

  /** Sends one request; `timeoutMs` overrides the pool's (0 = none). */
  send(request: Buffer, done: (outcome: Http1Outcome) => void, timeoutMs = this.options.timeoutMs): void {
    let connection = this.free.pop();
    while (connection?.dead) connection = this.free.pop();
    if (!connection) {
      if (this.connections.size >= this.options.maxConnections) {
        done({ failure: 'network-error', reason: 'no free connection' });
        return;
      }
      connection = this.connect();
      this.free.pop();
    }
    const deadlineMs = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity;
    connection.write(request, { done, timeoutMs, deadlineMs });
    if (deadlineMs < this.sweepAt) this.sweepBy(deadlineMs);
  }

  release(connection: Connection): void {
    this.free.push(connection);
  }

  forget(connection: Connection): void {
    this.connections.delete(connection);
  }

  async close(): Promise<void> {
    clearTimeout(this.sweep);
    this.sweepAt = -Infinity;
    for (const connection of this.connections) {
      connection.dead = true;
      connection.socket.destroy();
    }
    this.connections.clear();
    this.free.length = 0;
  }

  describeTarget(): string {
    return this.options.unixSocket ?? this.options.url.host;
  }

  private connect(): Connection {
    const url = this.options.url;
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let socket: net.Socket;
    if (url.protocol === 'https:') {
      socket = this.options.unixSocket
        ? tls.connect({ path: this.options.unixSocket, servername: host, ...this.options.tls })
        : tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...this.options.tls });
    } else {
      socket = this.options.unixSocket ? net.connect({ path: this.options.unixSocket }) : net.connect({ host, port });
    }
    const connection = new Connection(socket, this);
    this.connections.add(connection);
    for (let i = 0; i < this.options.pipelining; i++) this.free.push(connection);
    return connection;
  }

  private sweepBy(deadlineMs: number): void {
    clearTimeout(this.sweep);
    this.sweepAt = deadlineMs;
    // Past the deadline by a tick: the check is "now > deadline".
    this.sweep = setTimeout(() => this.expire(), Math.max(0, deadlineMs - performance.now()) + 1);
    this.sweep.unref();
  }

  private expire(): void {
    const now = performance.now();
    let next = Infinity;
    for (const connection of this.connections) {
      const oldest = connection.pending[0];
      if (oldest && now > oldest.deadlineMs) connection.fail('timeout', `no reply within ${oldest.timeoutMs} ms`);
      else if (oldest && oldest.deadlineMs < next) next = oldest.deadlineMs;
    }
    this.sweepAt = Infinity;
    if (next < Infinity) this.sweepBy(next);
  }
}

interface ParsedReply {
  reply: Http1Reply;
  consumed: number;
  close: boolean;
  /** A 1xx other than 101: not the reply yet. */
  interim?: boolean;
}

/** One reply from the front of `data`: the reply, 'incomplete', or why the bytes are not HTTP/1.1. */
export function parseReply(data: Buffer, maxBytes: number): ParsedReply | 'incomplete' | string {
  let headEnd = data.indexOf(CRLF2);
  let bodyStart = headEnd + 4;
  if (headEnd < 0) {
    // Go accepts bare-LF line endings: a head may end in "\n\n" or "\n\r\n".
    const lf = data.indexOf(LF2);
    const mixed = data.indexOf(LF_CRLF);
    headEnd = lf < 0 ? mixed : mixed < 0 ? lf : Math.min(lf, mixed);
    if (headEnd < 0) return data.length > 65536 ? 'reply headers over 64 KiB' : 'incomplete';
    bodyStart = headEnd + (headEnd === lf ? 2 : 3);
  }
  // A backend's heads repeat (the Date header changes once a second): parse each new one once.
  const cached = lastHead;
  if (cached && cached.bytes.length === headEnd && data.compare(cached.bytes, 0, headEnd, 0, headEnd) === 0) {
    return framedReply(data, bodyStart, maxBytes, cached.parsed);
  }
  const parsed = parseHead(data.toString('latin1', 0, headEnd));
  if (typeof parsed === 'string') return parsed;
  lastHead = { bytes: Buffer.from(data.subarray(0, headEnd)), parsed };
  return framedReply(data, bodyStart, maxBytes, parsed);
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

let lastHead: { bytes: Buffer; parsed: ParsedHead } | undefined;

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
  if (status >= 100 && status < 200) return { reply: { status, body: Buffer.alloc(0) }, consumed: bodyStart, close: false, interim: true };
  const noBody = status === 204 || status === 304;
  if (noBody) return { reply: { status, contentType, contentEncoding, location, body: Buffer.alloc(0) }, consumed: bodyStart, close };
  if (chunked) return parseChunked(data, bodyStart, maxBytes, { status, contentType, contentEncoding, location }, close);
  if (contentLength < 0) return 'a reply without Content-Length or chunked framing (read-until-close is not supported under load)';
  if (!Number.isSafeInteger(contentLength) || contentLength > maxBytes) return `a reply body of ${contentLength} bytes (limit ${maxBytes})`;
  if (data.length < bodyStart + contentLength) return 'incomplete';
  return { reply: { status, contentType, contentEncoding, location, body: data.subarray(bodyStart, bodyStart + contentLength) }, consumed: bodyStart + contentLength, close };
}

function parseChunked(data: Buffer, start: number, maxBytes: number, head: Omit<Http1Reply, 'body'>, close: boolean): ParsedReply | 'incomplete' | string {
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
      const end = data.indexOf('\r\n', lineEnd + 2, 'latin1');
      if (end < 0) return 'incomplete';
      const trailerEnd = end === lineEnd + 2 ? end + 2 : data.indexOf(CRLF2, lineEnd) + 4;
      if (trailerEnd < 4) return 'incomplete';
      return { reply: { ...head, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts) }, consumed: trailerEnd, close };
    }
    length += size;
    if (length > maxBytes) return `a reply body over ${maxBytes} bytes`;
    if (data.length < lineEnd + 2 + size + 2) return 'incomplete';
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}
