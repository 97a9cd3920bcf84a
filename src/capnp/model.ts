/**
 * What Proksi's external_auth middleware does around the call (docs/proksi-external-auth.md §4 and §5): how it builds
 * the AuthRequest from the client's request, and what it does with each decision, including
 * the two fail-opens and the spoofable upstream header.
 */
import type { AuthDecision, AuthRequest, Header } from './wire/schema.js';
import { hasControlBytes, HTTP_TOKEN } from '../shared/text.js';

export { hasControlBytes };

export interface ProksiOptions {
  /** Lower-cased allowlist; undefined forwards every header, [] none. */
  forwardHeaders?: string[];
  maxHeaders: number;
  timeoutMs: number;
  onError: 'deny' | 'allow';
  upstreamHeader: string;
}

export const PROKSI_DEFAULTS: ProksiOptions = { maxHeaders: 32, timeoutMs: 1000, onError: 'deny', upstreamHeader: 'x-proksi-auth-context' };

/** The client's request as Proksi receives it. */
export interface ClientRequest {
  method: string;
  path: string;
  query: string;
  /** As Proksi prints session.client_addr(): `ip:port`, IPv6 as `[canonical]:port`. */
  clientIp: string;
  /** The request's headers in the order the client sent them; over HTTP/1.1 Host is one of them. */
  headers: [string, string][];
  /** HTTP/2 only: the request's :authority (the URI's authority), port included. */
  authority?: string;
}

/** How a test or a user describes a client request: the host once, and how the client sends it. */
export interface ClientRequestSpec {
  method?: string;
  /** The host with its port, as the client names it. */
  host?: string;
  path?: string;
  query?: string;
  clientIp?: string;
  headers?: [string, string][];
  /** An HTTP/2 client: the host is the URI's authority and no Host header is sent. */
  http2?: boolean;
  /** HTTP/1.1: send no Host header (default: a Host header first, unless `headers` has one). */
  noHostHeader?: boolean;
}

export const CLIENT_DEFAULTS = { method: 'GET', host: 'example.com', path: '/', query: '', clientIp: '203.0.113.7:51234' } as const;

/** The request a client sends: over HTTP/1.1 the host goes first as a Host header, over HTTP/2 in the authority. */
export function clientRequest(spec: ClientRequestSpec): ClientRequest {
  const host = spec.host ?? CLIENT_DEFAULTS.host;
  const given = spec.headers ?? [];
  const base = { method: spec.method ?? CLIENT_DEFAULTS.method, path: spec.path ?? CLIENT_DEFAULTS.path, query: spec.query ?? CLIENT_DEFAULTS.query, clientIp: spec.clientIp ?? CLIENT_DEFAULTS.clientIp };
  if (spec.http2) return { ...base, headers: given, authority: host };
  const hasHost = given.some(([name]) => name.toLowerCase() === 'host');
  return { ...base, headers: spec.noHostHeader || hasHost ? given : [['Host', host], ...given] };
}

/** http's HeaderValue::to_str: visible ASCII and tab, or it fails and Proksi sends "". */
function headerText(value: string): string {
  return /^[\t\x20-\x7e]*$/.test(value) ? value : '';
}

/** http::Uri::host() of an authority: no userinfo, no port, an IPv6 literal with its brackets. */
function authorityHost(authority: string): string {
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  return hostPort.split(':', 1)[0]!;
}

/**
 * The headers as pingora's header map holds them (http::HeaderMap): all values of one name
 * (case-insensitively) together, names in the order they first appear, each value with its own
 * spelling of the name (pingora's case map, HTTP/1).
 */
export function headerMapOrder(headers: [string, string][]): [string, string][] {
  const grouped = new Map<string, [string, string][]>();
  for (const header of headers) {
    const key = header[0].toLowerCase();
    grouped.set(key, [...(grouped.get(key) ?? []), header]);
  }
  return [...grouped.values()].flat();
}

/**
 * pingora's insert_header: the value takes the place of the first copy of the name and every
 * other copy goes; a name not there yet goes at the end.
 */
export function insertHeader(headers: [string, string][], name: string, value: string): [string, string][] {
  const key = name.toLowerCase();
  const at = headers.findIndex(([n]) => n.toLowerCase() === key);
  if (at < 0) return [...headers, [name, value]];
  return headers.flatMap((header, i): [string, string][] => (i === at ? [[name, value]] : header[0].toLowerCase() === key ? [] : [header]));
}

export function buildAuthRequest(client: ClientRequest, options: ProksiOptions): { request: AuthRequest; notes: string[] } {
  const notes: string[] = [];
  const grouped = headerMapOrder(client.headers);
  let host: string;
  if (client.authority !== undefined) {
    // HTTP/2: the URI has an authority, and Proksi takes its host.
    host = authorityHost(client.authority);
  } else {
    // ctx.host: the first Host header up to its first ':', so an IPv6 literal becomes "[".
    const hostHeader = grouped.find(([name]) => name.toLowerCase() === 'host');
    const text = hostHeader ? headerText(hostHeader[1]) : '';
    host = text.split(':', 1)[0]!;
    if (!hostHeader) notes.push(`no Host header: Proksi's host is "" (its router finds no route for it and answers 404 before external_auth runs)`);
    else if (text.startsWith('[')) notes.push(`Host ${text} reaches the service as "${host}": Proksi cuts the Host header at its first ':'`);
  }
  const allow = options.forwardHeaders === undefined ? undefined : new Set(options.forwardHeaders.map((h) => h.toLowerCase()));
  const headers: Header[] = [];
  let dropped = 0;
  for (const [wireName, value] of grouped) {
    // HeaderMap names are lower-case.
    const name = wireName.toLowerCase();
    if (allow && !allow.has(name)) continue;
    if (headers.length >= options.maxHeaders) {
      dropped++;
      continue;
    }
    const text = headerText(value);
    if (text !== value) notes.push(`header ${name} has bytes outside visible ASCII: Proksi sends its value as ""`);
    headers.push({ name, value: text });
  }
  if (dropped > 0) notes.push(`${dropped} header(s) beyond max_headers ${options.maxHeaders} are not sent (Proksi truncates silently)`);
  return { request: { method: client.method, host, path: client.path, query: client.query, clientIp: client.clientIp, headers }, notes };
}

export type ProksiOutcomeKind = 'proxied' | 'blocked' | 'redirected' | 'fail-open';

export interface ProksiOutcome {
  outcome: ProksiOutcomeKind;
  /** The status Proksi answers the client with; undefined when the request goes upstream. */
  status?: number;
  /** Upstream request headers when proxied (or failed open); response headers otherwise. */
  headers: [string, string][];
  body: string;
}

/** What Proksi's upstream_header can be: http's HeaderName::from_str takes a token (upper case is lower-cased). */
function validHeaderName(name: string): boolean {
  return HTTP_TOKEN.test(name);
}

/** The upstream request when Proksi sets no header: the client's headers as pingora's map holds them. */
function proxied(client: ClientRequest, outcome: 'proxied' | 'fail-open' = 'proxied'): ProksiOutcome {
  return { outcome, headers: headerMapOrder(client.headers), body: '' };
}

/** `Date` stands for the current date pingora writes. */
export const DATE_PLACEHOLDER = '<date>';

/**
 * What pingora adds to a response the middleware writes (issue 11 §1b, from running the real
 * middleware): the header carries no length, so over HTTP/1.1 pingora adds `Date` and
 * `Connection: close` and ends the body by closing; over HTTP/2 only `date` (frames delimit the
 * body, names are lower-case, no connection headers).
 */
function responseHeaders(client: ClientRequest, own: [string, string][]): [string, string][] {
  if (client.authority !== undefined) return [...own.map(([name, value]): [string, string] => [name.toLowerCase(), value]), ['date', DATE_PLACEHOLDER]];
  return [...own, ['Date', DATE_PLACEHOLDER], ['Connection', 'close']];
}

/** write_block_response: the status and no header of its own, not even a Content-Length. */
function blocked(client: ClientRequest, status: number): ProksiOutcome {
  return { outcome: 'blocked', status, headers: responseHeaders(client, []), body: '' };
}

/** What Proksi does when the call failed (timeout, exception, disconnect, an unreadable reply). */
export function errorOutcome(client: ClientRequest, options: ProksiOptions): { proksi: ProksiOutcome; warnings: string[] } {
  if (options.onError === 'allow') {
    const spoofed = client.headers.some(([name]) => name.toLowerCase() === options.upstreamHeader);
    return {
      proksi: proxied(client),
      warnings: [`on_error=allow lets the request through without ${options.upstreamHeader}${spoofed ? ', and the client\'s own copy reaches the upstream' : ''}`],
    };
  }
  return { proksi: blocked(client, 403), warnings: [] };
}

function statusOr(code: number, fallback: number): number {
  return code >= 100 && code <= 999 ? code : fallback;
}

export function proksiOutcome(decision: AuthDecision, client: ClientRequest, options: ProksiOptions): { proksi: ProksiOutcome; warnings: string[] } {
  const warnings: string[] = [];
  const header = options.upstreamHeader;
  const clientCopy = client.headers.some(([name]) => name.toLowerCase() === header);
  if (decision.responseBody !== '') warnings.push('responseBody is ignored: Proksi never reads it');
  const unreadable = (decision.invalidUtf8 ?? []).filter((field) => field !== 'responseBody');
  if (unreadable.length > 0) {
    const failed = errorOutcome(client, options);
    return { proksi: failed.proksi, warnings: [`${unreadable.join(' and ')} is not valid UTF-8: Proksi treats the call as failed (on_error=${options.onError})`, ...failed.warnings, ...warnings] };
  }
  switch (decision.action) {
    case 'pass': {
      if (decision.upstreamValue === '') {
        warnings.push(`pass with an empty upstreamValue: Proksi sets no ${header}${clientCopy ? ', so the client\'s spoofed copy reaches the upstream' : ', and a client-supplied one would reach the upstream'}`);
        return { proksi: proxied(client), warnings };
      }
      if (!validHeaderName(header)) {
        warnings.push(`upstream_header ${JSON.stringify(header)} is not a valid header name: Proksi cannot set it and proxies the request without it`);
        return { proksi: proxied(client), warnings };
      }
      if (hasControlBytes(decision.upstreamValue)) {
        warnings.push(`upstreamValue has control bytes: Proksi cannot set ${header} and proxies the request${clientCopy ? ' with the client\'s spoofed copy' : ' without it'}`);
        return { proksi: proxied(client), warnings };
      }
      // The name as Proksi gives it (http's HeaderName, lower-case) replaces the first client copy.
      return { proksi: { outcome: 'proxied', headers: insertHeader(headerMapOrder(client.headers), header, decision.upstreamValue), body: '' }, warnings };
    }
    case 'block': {
      const status = statusOr(decision.statusCode, 403);
      if (status !== decision.statusCode) warnings.push(`statusCode ${decision.statusCode} is outside 100-999: Proksi answers 403`);
      else if (status < 400 || status > 599) warnings.push(`a block with status ${status} (not 4xx/5xx): the client gets an empty ${status}`);
      return { proksi: blocked(client, status), warnings };
    }
    case 'redirect': {
      const location = decision.redirectLocation;
      if (location === '') {
        warnings.push('redirect without a redirectLocation: Proksi answers 500');
        return { proksi: blocked(client, 500), warnings };
      }
      if (hasControlBytes(location)) {
        warnings.push('redirectLocation has control bytes: Proksi cannot write the Location header and lets the request through UNAUTHENTICATED (fail-open)');
        return { proksi: proxied(client, 'fail-open'), warnings };
      }
      const status = statusOr(decision.statusCode, 307);
      if (status !== decision.statusCode) warnings.push(`statusCode ${decision.statusCode} is outside 100-999: Proksi answers 307`);
      else if (status < 300 || status > 399) warnings.push(`a redirect with status ${status} (not 3xx): browsers will not follow the Location`);
      const body = `Redirecting to ${location}\n`;
      // Location and Content-Type, but no length (the real middleware, run): the body ends with the connection.
      const own: [string, string][] = [['location', location], ['Content-Type', 'text/plain; charset=utf-8']];
      return { proksi: { outcome: 'redirected', status, headers: responseHeaders(client, own), body }, warnings };
    }
    default: {
      const failed = errorOutcome(client, options);
      return { proksi: failed.proksi, warnings: [`action ${decision.action} is not in the schema: Proksi treats the call as failed (on_error=${options.onError})`, ...failed.warnings, ...warnings] };
    }
  }
}
