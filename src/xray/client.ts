/**
 * One event sent the way Xray's (and Hysteria 2's) Go client sends it, and read the way it reads
 * the reply (docs/xray-extauth.md §2.2): Go's request bytes, redirects followed as
 * http.Client follows them (at most 10, the verdict from the final reply), one timeout over the
 * whole exchange, and the body read as far as Go reads it: the first JSON value for ExtAuth
 * (json.NewDecoder(resp.Body).Decode), all of it for Hysteria 2 (io.ReadAll, json.Unmarshal),
 * nothing for a notification. No read limit of authkit's own decides a verdict: the only cap is
 * far above any real reply and says so when it is reached.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { buildEventBody, type ConnectionFacts, type Dialect, type EventType } from './wire/dialect.js';
import { failedRequestVerdict, readReply, type Reply, type Verdict } from './contract.js';
import { GoTransport, type GoResponse, type TlsTrust } from './transport.js';
import { asksGzip, goHeader, goHeaderLines, GoRequestError, type GoRequest } from './wire/go-request.js';
import { GoProtocolError, headerValue } from './wire/go-reply.js';
import { FirstValueScanner, goUtf8Text } from './wire/go-json-stream.js';
import { GoUrlError, parseGoUrl, refererText, resolveLocation, type GoUrl } from './wire/go-url.js';
import { UnexpectedEof } from './wire/byte-reader.js';

/** authkit stops reading a body here (Go would read on); reaching it is its own reason, never a verdict. */
export const HARD_READ_CAP = 64 << 20;
/** The statuses http.Client follows (with a Location). */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
/** Go's default CheckRedirect: the 10th request's redirect is not followed. */
export const MAX_REQUESTS = 10;

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
  transport?: GoTransport;
  unixSocket?: string;
  /** For a transport of its own: a private CA, or no verification (--cacert, --insecure). */
  tls?: TlsTrust;
  now?: Date;
  /** Cancels the request (the connection ended, the check timed out). */
  signal?: AbortSignal;
  /** Send this body instead of the event's (the malformed-request checks). */
  rawBody?: string;
  /** Content-Type instead of application/json; null for none. */
  contentType?: string | null;
  /** The first request already went out (on the load engine's client) and got this redirect: go on from there. */
  redirectedBy?: Redirect;
}

export interface Redirect {
  status: number;
  location: string;
}

export interface EventExchange {
  /** The first request, headers in the order and case they went on the wire. */
  request: { method: 'POST'; url: string; headers: Record<string, string>; body: string };
  /** Each redirect followed, in order. */
  redirects: Redirect[];
  reply?: { status: number; proto: string; headers: Record<string, string>; body: string; bytes: number; truncated: boolean };
  latencyMs: number;
  verdict: Verdict;
}

export function newConnectionId(): string {
  return randomUUID();
}

/**
 * The headers the proxy sets on its request (req.Header): Content-Type, the src dialect's secret
 * as a bearer token, and the wiki dialect's configured headers (which may carry one too).
 */
export function eventHeaders(request: Pick<EventRequest, 'dialect' | 'secret' | 'headers' | 'contentType'>): Map<string, string> {
  const canSend = request.dialect.secret === 'bearer' || request.dialect.customHeaders;
  const pairs: [string, string][] = [];
  if (request.contentType !== null) pairs.push(['Content-Type', request.contentType ?? 'application/json']);
  if (canSend && request.secret !== undefined) pairs.push(['Authorization', `Bearer ${request.secret}`]);
  pairs.push(...(request.headers ?? []));
  return goHeader(pairs);
}

/** The proxy's request for an event, ready for the wire. */
export function eventRequest(url: GoUrl, event: Pick<EventRequest, 'dialect' | 'secret' | 'headers' | 'contentType'>, body: string): GoRequest {
  return { method: 'POST', url, header: eventHeaders(event), body: Buffer.from(body, 'utf8') };
}

export async function sendEvent(event: EventRequest): Promise<EventExchange> {
  const body = event.rawBody ?? buildEventBody(event.dialect, event.type, event.facts, event.now);
  const started = performance.now();
  const latency = (): number => Math.round((performance.now() - started) * 100) / 100;
  const shown = { method: 'POST' as const, url: event.url, headers: {} as Record<string, string>, body };
  const redirects: Redirect[] = [];
  const fail = (cls: 'timeout' | 'network-error', reason: string): EventExchange => ({
    request: shown, redirects, latencyMs: latency(), verdict: failedRequestVerdict(event.dialect, event.type, cls, reason),
  });
  let request: GoRequest;
  try {
    request = eventRequest(parseGoUrl(event.url), event, body);
    shown.headers = Object.fromEntries(goHeaderLines(request));
  } catch (error) {
    if (error instanceof GoUrlError || error instanceof GoRequestError) return fail('network-error', error.message);
    throw error;
  }
  const transport = event.transport ?? new GoTransport({ unixSocket: event.unixSocket, tls: event.tls });
  // Xray gives connect and disconnect 5 s when its timeout is 0 (docs/xray-extauth.md).
  const seconds = event.timeoutSeconds > 0 ? event.timeoutSeconds : event.type === 'connect' || event.type === 'disconnect' ? 5 : 0;
  const signal = abortSignal(seconds, event.signal);
  let response: GoResponse | undefined;
  try {
    const first = request;
    let stripSensitive = false;
    for (let requests = 1; ; requests++) {
      response = requests === 1 && event.redirectedBy ? alreadyAnswered(event.redirectedBy) : await transport.roundTrip(request, signal);
      const next = redirectFor(response, request, first, stripSensitive);
      if (!next) break;
      redirects.push({ status: response.status, location: headerValue(response, 'Location')! });
      response.release();
      response = undefined;
      if (requests >= MAX_REQUESTS) return fail('network-error', 'stopped after 10 redirects');
      ({ request, stripSensitive } = next);
    }
    const read = await readBody(event, response, asksGzip(request));
    const headers = Object.fromEntries(response.headers.map(([name, value]) => [name.toLowerCase(), value]));
    const reply: Reply = { status: response.status, contentType: headerValue(response, 'Content-Type'), body: read.text, truncated: read.capped };
    const verdict = read.failure
      ? failedRequestVerdict(event.dialect, event.type, 'network-error', read.failure)
      : readReply(event.dialect, event.type, reply, event.kickOnDeny);
    if (read.capped) verdict.warnings.push(`authkit stopped reading at its ${HARD_READ_CAP >> 20} MiB cap; Go would read on, so this verdict is authkit's, not Go's`);
    if (redirects.length > 0) {
      verdict.warnings.push(`redirected ${redirects.map((r) => `${r.status} -> ${r.location}`).join(', ')}: Go follows redirects (a 301/302/303 turns the POST into a bodiless GET); answer directly`);
    }
    return {
      request: shown, redirects, latencyMs: latency(), verdict,
      reply: { status: response.status, proto: response.proto, headers, body: read.text, bytes: read.bytes, truncated: read.capped },
    };
  } catch (error) {
    if (event.signal?.aborted) return fail('network-error', 'cancelled before the reply was complete');
    if (signal?.aborted) return fail('timeout', `no complete reply within ${seconds} s`);
    return fail('network-error', describeNetworkError(error));
  } finally {
    response?.release();
    if (!event.transport) transport.close();
  }
}

/**
 * http.Client's next request for a redirect, or undefined when the reply is final: 301/302/303
 * turn a POST into a GET without a body, 307/308 repeat the method with the first request's
 * body; the first request's headers are copied (Authorization and cookies not once a hop left
 * the first host's domain), and Referer names the previous URL unless that was https and the
 * next is http.
 */
function redirectFor(response: GoResponse, current: GoRequest, first: GoRequest, stripped: boolean): { request: GoRequest; stripSensitive: boolean } | undefined {
  const { status } = response;
  if (!REDIRECT_STATUSES.has(status)) return undefined;
  const location = headerValue(response, 'Location');
  if (!location) return undefined;
  let url: GoUrl;
  try {
    url = resolveLocation(current.url, location);
  } catch (error) {
    throw new GoUrlError(`failed to parse Location header ${JSON.stringify(location)}: ${(error as Error).message}`);
  }
  const keepBody = status === 307 || status === 308;
  const method = keepBody ? current.method : 'GET';
  const stripSensitive = stripped || (first.url.host !== url.host && !isDomainOrSubdomain(url.hostname, first.url.hostname));
  const header = new Map<string, string>();
  for (const [name, value] of first.header) {
    if (stripSensitive && SENSITIVE.has(name)) continue;
    header.set(name, value);
  }
  if (!header.get('Referer') && !(current.url.scheme === 'https' && url.scheme === 'http')) header.set('Referer', refererText(current.url));
  return { request: { method, url, header, body: keepBody ? first.body : undefined }, stripSensitive };
}

/** A reply the load engine's client received: only its status and Location matter here. */
function alreadyAnswered(redirect: Redirect): GoResponse {
  return { proto: 'HTTP/1.1', status: redirect.status, headers: [['Location', redirect.location]], body: (async function* () {})(), release: () => undefined };
}

const SENSITIVE = new Set(['Authorization', 'Www-Authenticate', 'Cookie', 'Cookie2']);

function isDomainOrSubdomain(sub: string, parent: string): boolean {
  if (sub === parent) return true;
  if (/[:%]/.test(sub)) return false;
  return sub.endsWith(parent) && sub.length > parent.length && sub[sub.length - parent.length - 1] === '.';
}

interface BodyRead {
  text: string;
  bytes: number;
  capped: boolean;
  /** Why reading failed before Go had what it needed (a verdict of its own). */
  failure?: string;
}

/** The body as far as the proxy reads it. */
async function readBody(event: EventRequest, response: GoResponse, transportGzip: boolean): Promise<BodyRead> {
  // Notifications: Xray looks at the status only and closes the body unread.
  if (event.type !== 'authorization') return { text: '', bytes: 0, capped: false };
  const gzip = transportGzip && headerValue(response, 'Content-Encoding')?.toLowerCase() === 'gzip';
  const source = gzip ? gunzipped(response.body) : response.body;
  const scanner = event.dialect.reply === 'extauth-user' ? new FirstValueScanner() : undefined;
  const chunks: Buffer[] = [];
  let bytes = 0;
  const result = (failure?: string, capped = false, length = bytes): BodyRead => {
    const all = Buffer.concat(chunks, bytes).subarray(0, length);
    return { text: goUtf8Text(all), bytes: all.length, capped, failure };
  };
  try {
    for await (const chunk of source) {
      chunks.push(chunk);
      bytes += chunk.length;
      if (scanner) {
        const scan = scanner.push(chunk);
        // Go's decoder stops at the end of the first value, or at the first byte JSON cannot have.
        if (scan.state === 'end') return result(undefined, false, scan.length);
        if (scan.state === 'error') return result();
      }
      if (bytes > HARD_READ_CAP) return result(undefined, true);
    }
  } catch (error) {
    if (error instanceof UnexpectedEof || (error as NodeJS.ErrnoException).code === 'ECONNRESET') {
      return result(`the connection ended before the ${scanner ? 'reply\'s first JSON value' : 'reply body'} did (unexpected EOF): the proxy denies`);
    }
    if (gzip && (error as NodeJS.ErrnoException).code?.startsWith('Z_')) return result(`a gzip body that does not decompress (${(error as Error).message}): the proxy denies`);
    throw error;
  }
  if (scanner) {
    const end = scanner.finish();
    if (end.state === 'end') return result(undefined, false, end.length);
  }
  return result();
}

/** Go's transport decodes gzip as the body streams; a bomb is read only as far as needed. */
function gunzipped(body: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  const gunzip = createGunzip();
  pipeline(Readable.from(body), gunzip).catch((error: Error) => gunzip.destroy(error));
  return gunzip;
}

function abortSignal(seconds: number, cancel: AbortSignal | undefined): AbortSignal | undefined {
  const signals = [seconds > 0 ? AbortSignal.timeout(seconds * 1000) : undefined, cancel].filter((s): s is AbortSignal => s !== undefined);
  return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
}

export function describeNetworkError(error: unknown): string {
  if (error instanceof GoProtocolError || error instanceof GoUrlError || error instanceof GoRequestError) return error.message;
  const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.code ?? e.cause?.code;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host not found',
    ECONNRESET: 'connection reset by the backend',
    EPIPE: 'the backend closed the connection while the request was sent',
    ENOENT: 'no such socket',
    EACCES: 'permission denied',
  };
  if (error instanceof UnexpectedEof) return 'the backend closed the connection before the reply was complete (unexpected EOF)';
  return (code && known[code]) ?? `${code ? `${code}: ` : ''}${e.message}`;
}
