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
import { readReply, type Http1Reply } from './http1-reply.js';

export { parseReply, type Http1Reply } from './http1-reply.js';

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

/** What one read may bring (libuv reads up to this much at once). */
const READ_BUFFER_BYTES = 64 * 1024;

class Connection {
  readonly pending: Pending[] = [];
  /** The start of a reply that a read ended in the middle of, copied out of the read buffer. */
  private rest: Buffer | undefined;
  dead = false;
  readonly socket: net.Socket;

  /**
   * A plain socket reads into the pool's one read buffer (`onread`): no stream machinery and no
   * new Buffer per read. One buffer serves every connection: a read's callback runs right after
   * that read, on this thread, and takes what it needs before returning (an unfinished reply is
   * copied), so no read can overwrite bytes still in use; and a thousand connections do not hold
   * 64 KiB each. TLS sockets keep 'data' events.
   */
  constructor(connect: (onread: net.OnReadOpts | undefined) => net.Socket, buffer: Buffer | undefined, private readonly pool: Http1Pool) {
    const onread = buffer && {
      buffer,
      callback: (bytes: number): boolean => {
        this.receive(buffer.subarray(0, bytes));
        return true;
      },
    };
    const socket = connect(onread);
    this.socket = socket;
    socket.setNoDelay(true);
    if (!buffer) socket.on('data', (chunk: Buffer) => this.receive(chunk));
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
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let at = 0;
    while (at < data.length && !this.dead) {
      const parsed = readReply(data, at, this.pool.maxReplyBytes);
      if (parsed === 'incomplete') {
        // The read buffer is reused by the next read: what is kept is copied.
        this.rest = Buffer.from(data.subarray(at));
        return;
      }
      if (typeof parsed === 'string') {
        this.fail('network-error', parsed);
        return;
      }
      at = parsed.consumed;
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
  /** Shared by the plain connections (Connection's constructor says why that is safe). */
  private readBuffer: Buffer | undefined;

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
    const path = this.options.unixSocket;
    const plain = url.protocol !== 'https:';
    const connection = new Connection((onread) => {
      if (!plain) {
        return path
          ? tls.connect({ path, servername: host, ...this.options.tls })
          : tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...this.options.tls });
      }
      return path ? net.connect({ path, onread }) : net.connect({ host, port, onread });
    }, plain ? (this.readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES)) : undefined, this);
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
