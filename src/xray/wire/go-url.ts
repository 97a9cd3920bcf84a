/**
 * URLs as Go's net/url keeps them for an HTTP client (docs/xray-extauth.md §2.2): the
 * authority exactly as written (`example.com:80` keeps its port in the Host header, which the
 * WHATWG URL parser would drop), the path and query as written, and Go's way of resolving a
 * redirect's Location and of printing a URL for the Referer header.
 */

export interface GoUrl {
  scheme: 'http' | 'https';
  /** user:pass, without the '@'; '' when absent. */
  userinfo: string;
  /** The authority as written, without userinfo: `example.com:8080`, `[fe80::1%25eth0]:80`. */
  host: string;
  /** The host name to dial and compare: no brackets, the zone unescaped. */
  hostname: string;
  port: number;
  /** The path as written ('' when absent). */
  path: string;
  /** After '?', without it; undefined when there is no '?'. */
  query?: string;
  fragment?: string;
}

export class GoUrlError extends Error {}

/** url.Parse for the two schemes an HTTP client can use. */
export function parseGoUrl(text: string): GoUrl {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s.exec(text);
  if (!match) throw new GoUrlError(`parse "${text}": not an absolute http(s) URL`);
  const scheme = match[1]!.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw new GoUrlError(`unsupported protocol scheme "${scheme}"`);
  const authority = match[2]!;
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at);
  const host = at < 0 ? authority : authority.slice(at + 1);
  if (host === '') throw new GoUrlError('http: no Host in request URL');
  const { hostname, port } = splitHost(host, scheme);
  if (/[\x00-\x1f\x7f]/.test(text)) throw new GoUrlError(`parse ${JSON.stringify(text)}: net/url: invalid control character in URL`);
  return { scheme, userinfo, host, hostname, port, path: match[3]!, query: match[4], fragment: match[5] };
}

function splitHost(host: string, scheme: 'http' | 'https'): { hostname: string; port: number } {
  const defaultPort = scheme === 'https' ? 443 : 80;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) throw new GoUrlError(`parse: missing ']' in host "${host}"`);
    const rest = host.slice(close + 1);
    if (rest !== '' && !/^:\d*$/.test(rest)) throw new GoUrlError(`parse: invalid port "${rest}" after host`);
    const literal = decodeURIComponent(host.slice(1, close));
    return { hostname: literal, port: rest.length > 1 ? Number(rest.slice(1)) : defaultPort };
  }
  const colon = host.lastIndexOf(':');
  if (colon < 0) return { hostname: host, port: defaultPort };
  const port = host.slice(colon + 1);
  if (!/^\d*$/.test(port)) throw new GoUrlError(`parse: invalid port ":${port}" after host`);
  return { hostname: host.slice(0, colon), port: port === '' ? defaultPort : Number(port) };
}

/**
 * Request.RequestURI as the client writes it on the request line: the path ("/" when empty)
 * with the bytes Go escapes percent-encoded, then `?query` when the URL has one.
 */
export function requestUri(url: GoUrl): string {
  const path = url.path === '' ? '/' : escapePath(url.path);
  return url.query === undefined || url.query === '' ? path : `${path}?${url.query}`;
}

/** Bytes a path may carry as they are (RFC 3986 pchar and '/', and '%' of an escape). */
function escapePath(path: string): string {
  return Buffer.from(path, 'utf8').toString('latin1').replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The Host header: the authority with an IPv6 zone removed (Go's removeZone). */
export function hostHeader(url: GoUrl): string {
  return url.host.replace(/^\[([^\]%]*)%[^\]]*\]/, '[$1]');
}

/** url.URL.String() without userinfo, as Go's client puts it in Referer. */
export function refererText(url: GoUrl): string {
  return `${url.scheme}://${url.host}${url.path}${url.query === undefined ? '' : `?${url.query}`}${url.fragment === undefined ? '' : `#${url.fragment}`}`;
}

/** url.Parse(location) resolved against the request's URL (RFC 3986 §5.2, as Go does it). */
export function resolveLocation(base: GoUrl, location: string): GoUrl {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(location)) {
    if (/^https?:\/\//i.test(location)) return parseGoUrl(location);
    throw new GoUrlError(`unsupported protocol scheme "${location.slice(0, location.indexOf(':')).toLowerCase()}"`);
  }
  if (location.startsWith('//')) return parseGoUrl(`${base.scheme}:${location}`);
  const hash = location.indexOf('#');
  const fragment = hash < 0 ? undefined : location.slice(hash + 1);
  const beforeHash = hash < 0 ? location : location.slice(0, hash);
  const q = beforeHash.indexOf('?');
  const refPath = q < 0 ? beforeHash : beforeHash.slice(0, q);
  const refQuery = q < 0 ? undefined : beforeHash.slice(q + 1);
  if (refPath === '') return { ...base, query: refQuery ?? base.query, fragment };
  const merged = refPath.startsWith('/') ? refPath : `${base.path.slice(0, base.path.lastIndexOf('/') + 1) || '/'}${refPath}`;
  return { ...base, path: removeDotSegments(merged), query: refQuery, fragment };
}

function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/');
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..' && out.length > 1) out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(segment);
  }
  const joined = out.join('/');
  return joined.startsWith('/') ? joined : `/${joined}`;
}
