/**
 * What Proksi's external_auth middleware does around the call (spec §4 and §5): how it builds
 * the AuthRequest from the client's request, and what it does with each decision, including
 * the two fail-opens and the spoofable upstream header.
 */
import type { AuthDecision, AuthRequest, Header } from './schema.js';
import { hasControlBytes } from '../text.js';

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
  /** The Host header as the client sent it, port included. */
  host: string;
  path: string;
  query: string;
  /** ip:port, as session.client_addr() prints it. */
  clientIp: string;
  headers: [string, string][];
}

/** http's HeaderValue::to_str: visible ASCII and tab, or it fails and Proksi sends "". */
function headerText(value: string): string {
  return /^[\t\x20-\x7e]*$/.test(value) ? value : '';
}

export function buildAuthRequest(client: ClientRequest, options: ProksiOptions): { request: AuthRequest; notes: string[] } {
  const notes: string[] = [];
  // ctx.host: the Host header up to the first ':', so an IPv6 literal becomes "[".
  const host = client.host.split(':', 1)[0]!;
  if (client.host.startsWith('[')) notes.push(`Host ${client.host} reaches the service as "${host}": Proksi cuts the Host header at its first ':'`);
  // HeaderMap: names lower-cased, values grouped by name in the order names first appear.
  const grouped = new Map<string, string[]>();
  for (const [name, value] of client.headers) {
    const key = name.toLowerCase();
    grouped.set(key, [...(grouped.get(key) ?? []), value]);
  }
  const allow = options.forwardHeaders === undefined ? undefined : new Set(options.forwardHeaders.map((h) => h.toLowerCase()));
  const headers: Header[] = [];
  let dropped = 0;
  for (const [name, values] of grouped) {
    if (allow && !allow.has(name)) continue;
    for (const value of values) {
      if (headers.length >= options.maxHeaders) {
        dropped++;
        continue;
      }
      const text = headerText(value);
      if (text !== value) notes.push(`header ${name} has bytes outside visible ASCII: Proksi sends its value as ""`);
      headers.push({ name, value: text });
    }
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

/** What Proksi does when the call failed (timeout, exception, disconnect, an unreadable reply). */
export function errorOutcome(client: ClientRequest, options: ProksiOptions): { proksi: ProksiOutcome; warnings: string[] } {
  if (options.onError === 'allow') {
    const spoofed = client.headers.some(([name]) => name.toLowerCase() === options.upstreamHeader);
    return {
      proksi: { outcome: 'proxied', headers: client.headers, body: '' },
      warnings: [`on_error=allow lets the request through without ${options.upstreamHeader}${spoofed ? ', and the client\'s own copy reaches the upstream' : ''}`],
    };
  }
  return { proksi: { outcome: 'blocked', status: 403, headers: [['content-length', '0']], body: '' }, warnings: [] };
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
        return { proksi: { outcome: 'proxied', headers: client.headers, body: '' }, warnings };
      }
      if (hasControlBytes(decision.upstreamValue)) {
        warnings.push(`upstreamValue has control bytes: Proksi cannot set ${header} and proxies the request${clientCopy ? ' with the client\'s spoofed copy' : ' without it'}`);
        return { proksi: { outcome: 'proxied', headers: client.headers, body: '' }, warnings };
      }
      const upstream = client.headers.filter(([name]) => name.toLowerCase() !== header);
      return { proksi: { outcome: 'proxied', headers: [...upstream, [header, decision.upstreamValue]], body: '' }, warnings };
    }
    case 'block': {
      const status = statusOr(decision.statusCode, 403);
      if (status !== decision.statusCode) warnings.push(`statusCode ${decision.statusCode} is outside 100-999: Proksi answers 403`);
      else if (status < 400 || status > 599) warnings.push(`a block with status ${status} (not 4xx/5xx): the client gets an empty ${status}`);
      return { proksi: { outcome: 'blocked', status, headers: [['content-length', '0']], body: '' }, warnings };
    }
    case 'redirect': {
      const location = decision.redirectLocation;
      if (location === '') {
        warnings.push('redirect without a redirectLocation: Proksi answers 500');
        return { proksi: { outcome: 'blocked', status: 500, headers: [['content-length', '0']], body: '' }, warnings };
      }
      if (hasControlBytes(location)) {
        warnings.push('redirectLocation has control bytes: Proksi cannot write the Location header and lets the request through UNAUTHENTICATED (fail-open)');
        return { proksi: { outcome: 'fail-open', headers: client.headers, body: '' }, warnings };
      }
      const status = statusOr(decision.statusCode, 307);
      if (status !== decision.statusCode) warnings.push(`statusCode ${decision.statusCode} is outside 100-999: Proksi answers 307`);
      else if (status < 300 || status > 399) warnings.push(`a redirect with status ${status} (not 3xx): browsers will not follow the Location`);
      const body = `Redirecting to ${location}\n`;
      return {
        proksi: { outcome: 'redirected', status, headers: [['location', location], ['content-type', 'text/plain; charset=utf-8'], ['content-length', String(Buffer.byteLength(body))]], body },
        warnings,
      };
    }
    default: {
      const failed = errorOutcome(client, options);
      return { proksi: failed.proksi, warnings: [`action ${decision.action} is not in the schema: Proksi treats the call as failed (on_error=${options.onError})`, ...failed.warnings, ...warnings] };
    }
  }
}
