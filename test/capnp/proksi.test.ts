import { describe, expect, it } from 'vitest';
import { buildAuthRequest, errorOutcome, PROKSI_DEFAULTS, proksiOutcome, type ClientRequest } from '../../src/capnp/proksi.js';
import type { AuthDecision } from '../../src/capnp/schema.js';

const client: ClientRequest = {
  method: 'GET', host: 'example.com:8443', path: '/a%2Fb', query: 'x=1', clientIp: '203.0.113.7:51234',
  headers: [['Authorization', 'Bearer t'], ['Accept', '*/*'], ['X-Proksi-Auth-Context', 'spoofed'], ['accept', 'text/html']],
};
const decision = (extra: Partial<AuthDecision>): AuthDecision => ({ action: 'pass', statusCode: 0, upstreamValue: '', redirectLocation: '', responseBody: '', ...extra });

describe('the AuthRequest Proksi builds (spec §4)', () => {
  it('strips the port from Host, lower-cases names and groups duplicates by name', () => {
    const { request } = buildAuthRequest(client, PROKSI_DEFAULTS);
    expect(request).toMatchObject({ method: 'GET', host: 'example.com', path: '/a%2Fb', query: 'x=1', clientIp: '203.0.113.7:51234' });
    expect(request.headers).toEqual([
      { name: 'authorization', value: 'Bearer t' }, { name: 'accept', value: '*/*' }, { name: 'accept', value: 'text/html' },
      { name: 'x-proksi-auth-context', value: 'spoofed' },
    ]);
  });

  it('cuts an IPv6 Host at its first colon, as Proksi does, and says so', () => {
    const built = buildAuthRequest({ ...client, host: '[::1]:8080' }, PROKSI_DEFAULTS);
    expect(built.request.host).toBe('[');
    expect(built.notes[0]).toMatch(/cuts the Host header/);
  });

  it('applies the allowlist, then the cap (duplicates count), and sends non-ASCII values as ""', () => {
    const allow = buildAuthRequest(client, { ...PROKSI_DEFAULTS, forwardHeaders: ['accept'] });
    expect(allow.request.headers.map((h) => h.value)).toEqual(['*/*', 'text/html']);
    expect(buildAuthRequest(client, { ...PROKSI_DEFAULTS, forwardHeaders: [] }).request.headers).toEqual([]);
    const capped = buildAuthRequest(client, { ...PROKSI_DEFAULTS, maxHeaders: 2 });
    expect(capped.request.headers).toHaveLength(2);
    expect(capped.notes.join()).toMatch(/2 header\(s\) beyond max_headers 2/);
    const utf8 = buildAuthRequest({ ...client, headers: [['x-name', 'Jürgen'], ['x-tab', 'a\tb']] }, PROKSI_DEFAULTS);
    expect(utf8.request.headers).toEqual([{ name: 'x-name', value: '' }, { name: 'x-tab', value: 'a\tb' }]);
  });
});

describe('what Proksi does with the decision (spec §5)', () => {
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
