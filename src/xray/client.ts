/**
 * Sends one event the way Xray's Go client does (spec §2.2): POST, compact JSON with a fixed
 * Content-Length, `User-Agent: Go-http-client/1.1`, `Accept-Encoding: gzip` (and gzip replies
 * decoded), the secret or custom headers, one timeout over the whole exchange, no retries and
 * no redirects followed (a redirect is reported instead).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createGunzip } from 'node:zlib';
import { Agent, request, type Dispatcher } from 'undici';
import { buildEventBody, type ConnectionFacts, type Dialect, type EventType } from './dialect.js';
import { failedRequestVerdict, readReply, type Reply, type Verdict } from './contract.js';

/** Enough for any real reply; a larger body is cut here and classified from its beginning. */
export const MAX_REPLY_BYTES = 1 << 20;

export interface EventRequest {
  url: string;
  dialect: Dialect;
  type: EventType;
  facts: ConnectionFacts;
  secret?: string;
  headers?: readonly [string, string][];
  /** Seconds over the whole exchange; 0 = none (Xray's default for authorization and heartbeat). */
  timeoutSeconds: number;
  kickOnDeny?: boolean;
  /** Reuse connections across events (a session, a suite); one is made and closed otherwise. */
  dispatcher?: Dispatcher;
  unixSocket?: string;
  now?: Date;
  /** Cancels the request (the connection ended, the check timed out). */
  signal?: AbortSignal;
}

export interface EventExchange {
  request: { method: 'POST'; url: string; headers: Record<string, string>; body: string };
  reply?: { status: number; headers: Record<string, string>; body: string; bytes: number; truncated: boolean };
  latencyMs: number;
  verdict: Verdict;
}

export function newConnectionId(): string {
  return randomUUID();
}

/** A dispatcher for the target: a Unix socket, or TCP with keep-alive like Go's DefaultTransport. */
export function eventDispatcher(unixSocket?: string): Agent {
  return new Agent({ connect: unixSocket ? { socketPath: unixSocket } : {}, keepAliveTimeout: 90_000, pipelining: 1 });
}

/** The secret and the configured headers: src sends its secret as a bearer token, and the wiki's headers map carries one the same way. */
export function authHeaders(request: Pick<EventRequest, 'secret' | 'headers'>): Record<string, string> {
  const headers: Record<string, string> = {};
  if (request.secret !== undefined) headers.authorization = `Bearer ${request.secret}`;
  for (const [name, value] of request.headers ?? []) headers[name.toLowerCase()] = value;
  return headers;
}

export function requestHeaders(request: Pick<EventRequest, 'dialect' | 'secret' | 'headers'>, body: string): Record<string, string> {
  const canSend = request.dialect.secret === 'bearer' || request.dialect.customHeaders;
  return {
    'user-agent': 'Go-http-client/1.1',
    'content-length': String(Buffer.byteLength(body)),
    'content-type': 'application/json',
    ...authHeaders({ secret: canSend ? request.secret : undefined, headers: request.headers }),
    'accept-encoding': 'gzip',
  };
}

export async function sendEvent(event: EventRequest): Promise<EventExchange> {
  const body = buildEventBody(event.dialect, event.type, event.facts, event.now);
  const headers = requestHeaders(event, body);
  const sent = { method: 'POST' as const, url: event.url, headers, body };
  const ownDispatcher = event.dispatcher ? undefined : eventDispatcher(event.unixSocket);
  // Xray gives connect and disconnect 5 s when its timeout is 0 (spec §2.5).
  const seconds = event.timeoutSeconds > 0 ? event.timeoutSeconds : event.type === 'connect' || event.type === 'disconnect' ? 5 : 0;
  const started = performance.now();
  const latency = (): number => Math.round((performance.now() - started) * 100) / 100;
  try {
    const response = await request(event.url, {
      // undici follows no redirects unless asked to, so a 3xx comes back to be reported.
      method: 'POST', headers, body, dispatcher: event.dispatcher ?? ownDispatcher,
      signal: abortSignal(seconds, event.signal),
      headersTimeout: 0, bodyTimeout: 0,
    });
    const { bytes, truncated: cut } = await readBounded(response.body);
    let truncated = cut;
    const replyHeaders = headersThatMatter(response.headers);
    let text: string;
    try {
      const decoded = await decodeBody(bytes, replyHeaders['content-encoding']);
      text = decoded.text;
      truncated ||= decoded.truncated;
    } catch (error) {
      const verdict = failedRequestVerdict(event.dialect, event.type, 'network-error', `a gzip body that does not decompress (${(error as Error).message})`);
      return { request: sent, reply: { status: response.statusCode, headers: replyHeaders, body: '', bytes: bytes.length, truncated }, latencyMs: latency(), verdict };
    }
    const reply: Reply = { status: response.statusCode, contentType: replyHeaders['content-type'], body: text, truncated };
    return {
      request: sent,
      reply: { status: response.statusCode, headers: replyHeaders, body: text, bytes: bytes.length, truncated },
      latencyMs: latency(),
      verdict: readReply(event.dialect, event.type, reply, event.kickOnDeny),
    };
  } catch (error) {
    if (event.signal?.aborted) {
      return { request: sent, latencyMs: latency(), verdict: failedRequestVerdict(event.dialect, event.type, 'network-error', 'cancelled before the reply was complete') };
    }
    const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
    const reason = timedOut ? `no complete reply within ${seconds} s` : describeNetworkError(error);
    return { request: sent, latencyMs: latency(), verdict: failedRequestVerdict(event.dialect, event.type, timedOut ? 'timeout' : 'network-error', reason) };
  } finally {
    await ownDispatcher?.close();
  }
}

function abortSignal(seconds: number, cancel: AbortSignal | undefined): AbortSignal | undefined {
  const signals = [seconds > 0 ? AbortSignal.timeout(seconds * 1000) : undefined, cancel].filter((s): s is AbortSignal => s !== undefined);
  return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
}

async function readBounded(body: Dispatcher.ResponseData['body']): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    length += chunk.length;
    if (length > MAX_REPLY_BYTES) {
      body.destroy();
      return { bytes: Buffer.concat(chunks).subarray(0, MAX_REPLY_BYTES), truncated: true };
    }
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

/**
 * A gzip reply decompressed as a stream, stopping at the read limit: a small body may expand
 * a thousandfold, and what fits is still the body's beginning, classified like any cut body.
 */
async function decodeBody(bytes: Buffer, encoding: string | undefined): Promise<{ text: string; truncated: boolean }> {
  if (encoding?.toLowerCase() !== 'gzip' || bytes.length === 0) return { text: bytes.toString('utf8'), truncated: false };
  const gunzip = createGunzip();
  const chunks: Buffer[] = [];
  let length = 0;
  const done = new Promise<boolean>((resolve, reject) => {
    gunzip.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length > MAX_REPLY_BYTES) {
        gunzip.destroy();
        resolve(true);
      }
    });
    gunzip.on('end', () => resolve(false));
    // A body cut at the read limit ends mid-stream: what came out so far is still its beginning.
    gunzip.on('error', (error: NodeJS.ErrnoException) => (length > 0 || error.code === 'Z_BUF_ERROR' ? resolve(true) : reject(error)));
  });
  gunzip.end(bytes);
  const truncated = await done;
  return { text: Buffer.concat(chunks).subarray(0, MAX_REPLY_BYTES).toString('utf8'), truncated };
}

const HEADERS_THAT_MATTER = ['content-type', 'content-length', 'content-encoding', 'location', 'transfer-encoding', 'www-authenticate'];

function headersThatMatter(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of HEADERS_THAT_MATTER) {
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export function describeNetworkError(error: unknown): string {
  const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.code ?? e.cause?.code;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    ECONNRESET: 'connection reset by the backend',
    ENOENT: 'no such socket',
    EACCES: 'permission denied',
    UND_ERR_SOCKET: 'the backend closed the connection before the reply was complete',
    UND_ERR_CONNECT_TIMEOUT: 'could not connect in time',
  };
  return (code && known[code]) ?? `${code ? `${code}: ` : ''}${e.message}`;
}
