import { describe, expect, it } from 'vitest';
import { buildAuthRequest, clientRequest, errorOutcome, PROKSI_DEFAULTS, proksiOutcome, type ClientRequest } from '../../src/capnp/model.js';
import type { AuthDecision } from '../../src/capnp/wire/schema.js';
import { socketAddressText } from '../../src/shared/ip.js';

/** An HTTP/1.1 request: Host first, then these headers. */
const client: ClientRequest = clientRequest({
  host: 'example.com:8443', path: '/a%2Fb', query: 'x=1', clientIp: '203.0.113.7:51234',
  headers: [['Authorization', 'Bearer t'], ['Accept', '*/*'], ['X-Proksi-Auth-Context', 'spoofed'], ['accept', 'text/html']],
});
const decision = (extra: Partial<AuthDecision>): AuthDecision => ({ action: 'pass', statusCode: 0, upstreamValue: '', redirectLocation: '', responseBody: '', ...extra });

describe('the AuthRequest Proksi builds (docs/proksi-external-auth.md §4)', () => {
  it('strips the port from Host, lower-cases names and groups duplicates by name', () => {
    const { request } = buildAuthRequest(client, PROKSI_DEFAULTS);
    expect(request).toMatchObject({ method: 'GET', host: 'example.com', path: '/a%2Fb', query: 'x=1', clientIp: '203.0.113.7:51234' });
    expect(request.headers).toEqual([
      { name: 'host', value: 'example.com:8443' },
      { name: 'authorization', value: 'Bearer t' }, { name: 'accept', value: '*/*' }, { name: 'accept', value: 'text/html' },
      { name: 'x-proksi-auth-context', value: 'spoofed' },
    ]);
  });

  it('cuts an IPv6 Host at its first colon, as Proksi does, and says so', () => {
    const built = buildAuthRequest(clientRequest({ host: '[::1]:8080' }), PROKSI_DEFAULTS);
    expect(built.request.host).toBe('[');
    expect(built.notes[0]).toMatch(/cuts the Host header/);
  });

  it('applies the allowlist, then the cap (duplicates count), and sends non-ASCII values as ""', () => {
    const allow = buildAuthRequest(client, { ...PROKSI_DEFAULTS, forwardHeaders: ['accept'] });
    expect(allow.request.headers.map((h) => h.value)).toEqual(['*/*', 'text/html']);
    expect(buildAuthRequest(client, { ...PROKSI_DEFAULTS, forwardHeaders: [] }).request.headers).toEqual([]);
    const capped = buildAuthRequest(client, { ...PROKSI_DEFAULTS, maxHeaders: 2 });
    expect(capped.request.headers).toHaveLength(2);
    expect(capped.notes.join()).toMatch(/3 header\(s\) beyond max_headers 2/);
    const utf8 = buildAuthRequest({ ...client, headers: [['x-name', 'Jürgen'], ['x-tab', 'a\tb']], authority: 'example.com' }, PROKSI_DEFAULTS);
    expect(utf8.request.headers).toEqual([{ name: 'x-name', value: '' }, { name: 'x-tab', value: 'a\tb' }]);
  });
});

describe('what Proksi does with the decision (docs/proksi-external-auth.md §5)', () => {
  it('pass with a value: replaces every client copy of the upstream header', () => {
    const { proksi, warnings } = proksiOutcome(decision({ upstreamValue: 'user=alice' }), client, PROKSI_DEFAULTS);
    expect(proksi.outcome).toBe('proxied');
    expect(proksi.headers.filter(([n]) => n.toLowerCase() === 'x-proksi-auth-context')).toEqual([['x-proksi-auth-context', 'user=alice']]);
    expect(warnings).toEqual([]);
  });

  it('pass with an empty value: the spoofed client copy reaches the upstream', () => {
    const { proksi, warnings } = proksiOutcome(decision({}), client, PROKSI_DEFAULTS);
    expect(proksi.headers).toContainEqual(['X-Proksi-Auth-Context', 'spoofed']);
    expect(warnings[0]).toMatch(/spoofed copy reaches the upstream/);
  });

  it('pass with control bytes: the header cannot be set and the client copy survives', () => {
    const { proksi, warnings } = proksiOutcome(decision({ upstreamValue: 'a\nb' }), client, PROKSI_DEFAULTS);
    expect(proksi.headers).toContainEqual(['X-Proksi-Auth-Context', 'spoofed']);
    expect(warnings[0]).toMatch(/control bytes/);
  });

  it('block: the status if 100-999, else 403, with an empty body; warns outside 4xx/5xx', () => {
    expect(proksiOutcome(decision({ action: 'block', statusCode: 401 }), client, PROKSI_DEFAULTS).proksi).toMatchObject({ outcome: 'blocked', status: 401, body: '' });
    expect(proksiOutcome(decision({ action: 'block', statusCode: 0 }), client, PROKSI_DEFAULTS).proksi.status).toBe(403);
    expect(proksiOutcome(decision({ action: 'block', statusCode: 200 }), client, PROKSI_DEFAULTS).warnings[0]).toMatch(/empty 200/);
  });

  it('redirect: Location, a text body, 307 when the status is out of range; 500 without a location', () => {
    const r = proksiOutcome(decision({ action: 'redirect', statusCode: 302, redirectLocation: 'https://login/' }), client, PROKSI_DEFAULTS).proksi;
    expect(r).toMatchObject({ outcome: 'redirected', status: 302, body: 'Redirecting to https://login/\n' });
    expect(r.headers).toContainEqual(['location', 'https://login/']);
    expect(proksiOutcome(decision({ action: 'redirect', statusCode: 0, redirectLocation: '/x' }), client, PROKSI_DEFAULTS).proksi.status).toBe(307);
    expect(proksiOutcome(decision({ action: 'redirect', statusCode: 302 }), client, PROKSI_DEFAULTS).proksi.status).toBe(500);
  });

  it('redirect with control bytes in Location: Proksi fails open', () => {
    const result = proksiOutcome(decision({ action: 'redirect', statusCode: 302, redirectLocation: 'https://x/\r\nSet-Cookie: a' }), client, PROKSI_DEFAULTS);
    expect(result.proksi.outcome).toBe('fail-open');
    expect(result.warnings[0]).toMatch(/UNAUTHENTICATED/);
  });

  it('an unknown action, invalid UTF-8 or a failed call follows on_error, and responseBody is ignored', () => {
    expect(proksiOutcome(decision({ action: 7 }), client, PROKSI_DEFAULTS).proksi).toMatchObject({ outcome: 'blocked', status: 403 });
    expect(proksiOutcome(decision({ upstreamValue: 'x', invalidUtf8: ['upstreamValue'] }), client, PROKSI_DEFAULTS).proksi.status).toBe(403);
    expect(errorOutcome(client, { ...PROKSI_DEFAULTS, onError: 'allow' }).warnings[0]).toMatch(/client's own copy reaches the upstream/);
    expect(proksiOutcome(decision({ action: 'block', statusCode: 401, responseBody: 'nope' }), client, PROKSI_DEFAULTS).warnings).toContain('responseBody is ignored: Proksi never reads it');
  });
});

describe('header for header, as the middleware and pingora do it (issue 11, 1b)', () => {
  const pass = decision({ upstreamValue: 'user=alice' });

  it('a block carries no Content-Length: only the Date and Connection: close pingora adds', () => {
    expect(proksiOutcome(decision({ action: 'block', statusCode: 401 }), client, PROKSI_DEFAULTS).proksi.headers).toEqual([['Date', '<date>'], ['Connection', 'close']]);
    expect(errorOutcome(client, PROKSI_DEFAULTS).proksi.headers).toEqual([['Date', '<date>'], ['Connection', 'close']]);
    const closing = clientRequest({ headers: [['Connection', 'close']] });
    expect(proksiOutcome(decision({ action: 'block', statusCode: 403 }), closing, PROKSI_DEFAULTS).proksi.headers).toEqual([['Date', '<date>'], ['Connection', 'close']]);
    // HTTP/2 has no connection headers, and names are lower-case.
    const h2 = clientRequest({ http2: true });
    expect(proksiOutcome(decision({ action: 'block', statusCode: 403 }), h2, PROKSI_DEFAULTS).proksi.headers).toEqual([['date', '<date>']]);
  });

  it('a redirect carries no Content-Length either, with or without a Location', () => {
    expect(proksiOutcome(decision({ action: 'redirect', statusCode: 302 }), client, PROKSI_DEFAULTS).proksi).toMatchObject({ status: 500, headers: [['Date', '<date>'], ['Connection', 'close']] });
    expect(proksiOutcome(decision({ action: 'redirect', statusCode: 302, redirectLocation: 'https://login/' }), client, PROKSI_DEFAULTS).proksi.headers).toEqual([
      ['location', 'https://login/'], ['Content-Type', 'text/plain; charset=utf-8'], ['Date', '<date>'], ['Connection', 'close'],
    ]);
  });

  it('the upstream header takes the place of the client\'s first copy, and the other copies go', () => {
    const spoofing = clientRequest({ headers: [['Accept', '*/*'], ['X-Proksi-Auth-Context', 'one'], ['Cookie', 'c'], ['x-proksi-auth-context', 'two']] });
    expect(proksiOutcome(pass, spoofing, PROKSI_DEFAULTS).proksi.headers).toEqual([
      ['Host', 'example.com'], ['Accept', '*/*'], ['x-proksi-auth-context', 'user=alice'], ['Cookie', 'c'],
    ]);
  });

  it('the upstream request groups duplicate names where the name first appears, each value keeping its spelling', () => {
    const duplicates = clientRequest({ headers: [['X-A', '1'], ['X-B', '2'], ['x-a', '3']] });
    const expected = [['Host', 'example.com'], ['X-A', '1'], ['x-a', '3'], ['X-B', '2']];
    expect(proksiOutcome(decision({}), duplicates, PROKSI_DEFAULTS).proksi.headers).toEqual(expected);
    expect(proksiOutcome(pass, duplicates, PROKSI_DEFAULTS).proksi.headers).toEqual([...expected, ['x-proksi-auth-context', 'user=alice']]);
    expect(errorOutcome(duplicates, { ...PROKSI_DEFAULTS, onError: 'allow' }).proksi.headers).toEqual(expected);
  });

  it('an upstream_header that is not a header name: Proksi cannot parse it and proxies without it', () => {
    const { proksi, warnings } = proksiOutcome(pass, client, { ...PROKSI_DEFAULTS, upstreamHeader: 'x auth' });
    expect(proksi.outcome).toBe('proxied');
    expect(proksi.headers.some(([name]) => name === 'x auth')).toBe(false);
    expect(warnings).toEqual(['upstream_header "x auth" is not a valid header name: Proksi cannot set it and proxies the request without it']);
  });

  it('over HTTP/1.1 Host is one of the headers: sent to the service, counted against max_headers, and sent upstream', () => {
    const request = clientRequest({ host: 'app.example:8080', headers: [['authorization', 'Bearer t']] });
    expect(request.headers).toEqual([['Host', 'app.example:8080'], ['authorization', 'Bearer t']]);
    const built = buildAuthRequest(request, { ...PROKSI_DEFAULTS, maxHeaders: 1 });
    expect(built.request).toMatchObject({ host: 'app.example', headers: [{ name: 'host', value: 'app.example:8080' }] });
    expect(built.notes).toContain('1 header(s) beyond max_headers 1 are not sent (Proksi truncates silently)');
    expect(proksiOutcome(pass, request, PROKSI_DEFAULTS).proksi.headers[0]).toEqual(['Host', 'app.example:8080']);
  });

  it('a Host header of the client\'s own wins over --host; without one Proksi\'s host is ""', () => {
    const own = clientRequest({ host: 'ignored.example', headers: [['accept', '*/*'], ['HOST', 'real.example:81']] });
    expect(own.headers).toEqual([['accept', '*/*'], ['HOST', 'real.example:81']]);
    expect(buildAuthRequest(own, PROKSI_DEFAULTS).request.host).toBe('real.example');
    const none = buildAuthRequest(clientRequest({ noHostHeader: true }), PROKSI_DEFAULTS);
    expect(none.request).toMatchObject({ host: '', headers: [] });
    expect(none.notes[0]).toMatch(/no Host header/);
  });

  it('over HTTP/2 the host comes from the URI authority, and no Host header is sent', () => {
    for (const [authority, host] of [['[::1]:8080', '[::1]'], ['example.com:8443', 'example.com'], ['user@example.com', 'example.com'], ['[2001:db8::1]', '[2001:db8::1]']]) {
      const built = buildAuthRequest(clientRequest({ http2: true, host: authority, headers: [['accept', '*/*']] }), PROKSI_DEFAULTS);
      expect(built.request.host).toBe(host);
      expect(built.request.headers).toEqual([{ name: 'accept', value: '*/*' }]);
      expect(built.notes).toEqual([]);
    }
  });

  it('the client address as Rust prints a SocketAddr: canonical IPv6, IPv4-mapped as ::ffff:a.b.c.d, no leading zeros', () => {
    expect(socketAddressText('[2001:DB8:0::1]:443')).toBe('[2001:db8::1]:443');
    expect(socketAddressText('[2001:db8:0:0:1:0:0:1]:1')).toBe('[2001:db8::1:0:0:1]:1');
    expect(socketAddressText('[2001:db8:0:1:1:1:1:1]:1')).toBe('[2001:db8:0:1:1:1:1:1]:1');
    expect(socketAddressText('[::FFFF:192.0.2.1]:80')).toBe('[::ffff:192.0.2.1]:80');
    expect(socketAddressText('[::192.0.2.1]:80')).toBe('[::c000:201]:80');
    expect(socketAddressText('[0:0:0:0:0:0:0:0]:0')).toBe('[::]:0');
    expect(socketAddressText('203.0.113.7:08080')).toBe('203.0.113.7:8080');
    for (const bad of ['203.0.113.7', '203.0.113.7:65536', 'localhost:80', '[203.0.113.7]:80', '[::1]', '2001:db8::1:443']) expect(socketAddressText(bad)).toBeUndefined();
  });
});
