/**
 * One request and its reply over a connection, the way Go's http.Transport (DefaultTransport)
 * makes it: HTTP/1.1 with keep-alive (at most 2 idle connections per host, 90 s idle), TLS that
 * offers ALPN h2 and http/1.1 and speaks HTTP/2 when the backend picks it, and the reply read
 * with Go's tolerances (wire/go-reply.ts). Redirects and the body's meaning are the client's
 * business (client.ts).
 */
import { createRequire } from 'node:module';
import type http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { ByteReader } from './wire/byte-reader.js';
import { goHeaderLines, goRequestBytes, GO_USER_AGENT, type GoRequest } from './wire/go-request.js';
import { keepsAlive, readReplyBody, readReplyHead, replyFraming, type Framing, type ReplyHead } from './wire/go-reply.js';
import { requestUri } from './wire/go-url.js';

/**
 * node:http2 loads only when a backend picks h2: importing it (with node:http under it) costs
 * ~18 ms of CPU at every start, which a load run's client CPU per request pays (issue 16), and
 * plain http never needs it.
 */
const require = createRequire(import.meta.url);
let loadedHttp2: typeof http2 | undefined;
const h2 = (): typeof http2 => (loadedHttp2 ??= require('node:http2') as typeof http2);

const MAX_IDLE_PER_HOST = 2;
const IDLE_TIMEOUT_MS = 90_000;
/** Go gives up after this many 1xx replies before the final one. */
const MAX_1XX = 5;

export interface GoResponse extends ReplyHead {
  /** The body as sent (still gzip-encoded if it was). */
  body: AsyncIterable<Buffer>;
  /** Ends the exchange: the connection goes back to the pool if the body was read to its end. */
  release(): void;
}

/** Trust anchors instead of the system's (a private CA), or no verification at all. */
export interface TlsTrust {
  ca?: string | Buffer;
  rejectUnauthorized?: boolean;
}

export interface GoTransportOptions {
  unixSocket?: string;
  tls?: TlsTrust;
}

interface Conn {
  socket: net.Socket;
  reader: ByteReader;
  key: string;
  idleTimer?: NodeJS.Timeout;
}

export class GoTransport {
  private readonly idle = new Map<string, Conn[]>();
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly live = new Set<net.Socket>();

  constructor(private readonly options: GoTransportOptions = {}) {}

  async roundTrip(request: GoRequest, signal?: AbortSignal): Promise<GoResponse> {
    signal?.throwIfAborted();
    const key = `${request.url.scheme}://${request.url.hostname}:${request.url.port}`;
    const session = this.sessions.get(key);
    if (session && !session.closed && !session.destroyed) return this.roundTripH2(session, request, signal);
    const reused = this.takeIdle(key);
    try {
      return await this.exchange(reused ?? (await this.dial(key, request, signal)), request, signal);
    } catch (error) {
      // The backend closed a kept-alive connection as this request went out: one fresh try.
      if (reused && error instanceof IdleClosed && !signal?.aborted) return this.exchange(await this.dial(key, request, signal), request, signal);
      throw error;
    }
  }

  private exchange(conn: Conn | { session: http2.ClientHttp2Session }, request: GoRequest, signal?: AbortSignal): Promise<GoResponse> {
    return 'session' in conn ? this.roundTripH2(conn.session, request, signal) : this.roundTripH1(conn, request, signal);
  }

  close(): void {
    for (const socket of this.live) socket.destroy();
    for (const session of this.sessions.values()) session.destroy();
    this.live.clear();
    this.idle.clear();
    this.sessions.clear();
  }

  private takeIdle(key: string): Conn | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const conn = list.pop()!;
      clearTimeout(conn.idleTimer);
      if (!conn.socket.destroyed && !conn.reader.closed && conn.reader.pending === 0) return conn;
      conn.socket.destroy();
    }
    return undefined;
  }

  private putIdle(conn: Conn): void {
    const list = this.idle.get(conn.key) ?? [];
    if (list.length >= MAX_IDLE_PER_HOST || conn.socket.destroyed) {
      conn.socket.destroy();
      return;
    }
    conn.idleTimer = setTimeout(() => conn.socket.destroy(), IDLE_TIMEOUT_MS);
    conn.idleTimer.unref();
    list.push(conn);
    this.idle.set(conn.key, list);
  }

  private dial(key: string, request: GoRequest, signal?: AbortSignal): Promise<Conn | { session: http2.ClientHttp2Session }> {
    const { url } = request;
    const path = this.options.unixSocket;
    const secure = url.scheme === 'https';
    const servername = net.isIP(url.hostname) ? undefined : url.hostname;
    const socket: net.Socket = secure
      ? tls.connect({ ...(path ? { path } : { host: url.hostname, port: url.port }), servername, ALPNProtocols: ['h2', 'http/1.1'], ...this.options.tls })
      : path ? net.connect({ path }) : net.connect({ host: url.hostname, port: url.port });
    socket.setNoDelay(true);
    this.live.add(socket);
    socket.on('close', () => this.live.delete(socket));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        socket.destroy();
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      });
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        signal?.removeEventListener('abort', onAbort);
        if (secure && (socket as tls.TLSSocket).alpnProtocol === 'h2') {
          const session = h2().connect(`https://${url.host}`, { createConnection: () => socket });
          session.on('error', () => undefined);
          session.on('close', () => this.sessions.delete(key));
          this.sessions.set(key, session);
          resolve({ session });
          return;
        }
        resolve({ socket, reader: new ByteReader(socket), key });
      });
    });
  }

  private async roundTripH1(conn: Conn, request: GoRequest, signal?: AbortSignal): Promise<GoResponse> {
    const onAbort = (): void => void conn.socket.destroy(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    try {
      conn.socket.write(goRequestBytes(request));
      let head: ReplyHead | undefined;
      for (let informational = 0; ; informational++) {
        head = await readReplyHead(conn.reader);
        if (head === undefined) throw new IdleClosed();
        if (head.status < 100 || head.status >= 200 || head.status === 101) break;
        if (informational >= MAX_1XX) throw new Error('net/http: too many 1xx informational responses');
      }
      const framing: Framing = replyFraming(head, request.method);
      let complete = false;
      let released = false;
      const reader = conn.reader;
      async function* body(): AsyncGenerator<Buffer> {
        yield* readReplyBody(reader, framing);
        complete = true;
      }
      return {
        ...head,
        body: body(),
        release: () => {
          if (released) return;
          released = true;
          done();
          if (complete && keepsAlive(head!, framing)) this.putIdle(conn);
          else conn.socket.destroy();
        },
      };
    } catch (error) {
      done();
      conn.socket.destroy();
      throw error;
    }
  }

  private async roundTripH2(session: http2.ClientHttp2Session, request: GoRequest, signal?: AbortSignal): Promise<GoResponse> {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': request.method, ':path': requestUri(request.url), ':scheme': 'https', ':authority': request.url.host,
    };
    for (const [name, value] of goHeaderLines(request)) {
      if (name === 'Host') continue;
      headers[name.toLowerCase()] = name === 'User-Agent' && value === GO_USER_AGENT ? 'Go-http-client/2.0' : value;
    }
    const stream = session.request(headers, { endStream: request.body === undefined, signal });
    if (request.body !== undefined) stream.end(request.body);
    const reply = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('error', reject);
      stream.once('close', () => reject(new Error(`the backend closed the HTTP/2 stream (code ${stream.rstCode})`)));
    });
    stream.on('error', () => undefined);
    const replyHeaders: [string, string][] = [];
    for (const [name, value] of Object.entries(reply)) {
      if (name.startsWith(':') || value === undefined) continue;
      const canonical = name.replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase());
      for (const v of Array.isArray(value) ? value : [String(value)]) replyHeaders.push([canonical, v]);
    }
    return {
      proto: 'HTTP/2.0', status: Number(reply[':status']), headers: replyHeaders,
      body: stream as AsyncIterable<Buffer>,
      release: () => {
        if (!stream.closed) stream.close(h2().constants.NGHTTP2_CANCEL);
      },
    };
  }
}

/** The connection ended before a byte of the reply. */
export class IdleClosed extends Error {
  constructor() {
    super('EOF: the backend closed the connection without a reply');
  }
}
