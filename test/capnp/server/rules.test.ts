import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../helpers.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, thrownBy } from '../../helpers.js';
import { InputError } from '../../../src/shared/errors.js';
import { loadRulesFile, parseRules, watchRules, type RulesWatcher, type RuleSet } from '../../../src/capnp/server/rules.js';
import { decideByRules, matchingRule } from '../../../src/capnp/server/rule-match.js';
import type { AuthRequest } from '../../../src/capnp/wire/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-capnp-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function request(over: Partial<AuthRequest> = {}, headers: [string, string][] = []): AuthRequest {
  return { method: 'GET', host: 'app.example', path: '/', query: '', clientIp: '203.0.113.7:51234', headers: headers.map(([name, value]) => ({ name, value })), ...over };
}

/** One rule with this match, deciding pass; anything else gets the default block 401. */
function only(match: unknown): RuleSet {
  return parseRules(JSON.stringify({ rules: [{ match, decision: { action: 'pass', upstreamValue: 'ok' } }] }), 'rules.json');
}

function passes(match: unknown, r: AuthRequest): boolean {
  return decideByRules(only(match), r).action === 'pass';
}

function invalid(rules: unknown): string {
  return thrownBy(InputError, () => parseRules(typeof rules === 'string' ? rules : JSON.stringify(rules), 'rules.json')).message;
}

describe('rules: matching', () => {
  it('the demo rules: Bearer good passes, /admin without it 403, /login redirects, else 401', async () => {
    const set = await loadRulesFile(join(ROOT, 'fixtures', 'capnp-serve', 'rules.json'));
    expect(set.warnings).toEqual([]);
    expect(decideByRules(set, request({ path: '/admin' }, [['authorization', 'Bearer good']]))).toMatchObject({ action: 'pass', upstreamValue: 'user=alice' });
    expect(decideByRules(set, request({ path: '/admin' }, [['authorization', 'Bearer bad']]))).toMatchObject({ action: 'block', statusCode: 403 });
    expect(decideByRules(set, request({ path: '/login' }))).toMatchObject({ action: 'redirect', statusCode: 302, redirectLocation: 'https://login.example/' });
    expect(decideByRules(set, request({ path: '/other' }))).toEqual({ action: 'block', statusCode: 401, upstreamValue: '', redirectLocation: '', responseBody: '' });
  });

  it('first match wins; an empty match matches everything; "default" replaces block 401', () => {
    const set = parseRules(JSON.stringify({
      rules: [
        { match: { pathPrefix: '/a' }, decision: { action: 'block', statusCode: 451 } },
        { match: { pathPrefix: '/ab' }, decision: { action: 'block', statusCode: 410 } },
        { match: {}, decision: { action: 'redirect', redirectLocation: '/x' } },
      ],
      default: { action: 'pass', upstreamValue: 'anonymous' },
    }), 'rules.json');
    expect(decideByRules(set, request({ path: '/abc' })).statusCode).toBe(451);
    expect(matchingRule(set, request({ path: '/z' }))?.index).toBe(2);
    expect(decideByRules(parseRules('{"rules":[],"default":{"action":"pass","upstreamValue":"anonymous"}}', 'r'), request())).toMatchObject({ action: 'pass', upstreamValue: 'anonymous' });
  });

  it('status codes default to 403 for block, 302 for redirect and 0 for pass', () => {
    const defaults = parseRules(JSON.stringify({ rules: [
      { match: { pathPrefix: '/b' }, decision: { action: 'block' } },
      { match: { pathPrefix: '/r' }, decision: { action: 'redirect', redirectLocation: '/l' } },
      { match: { pathPrefix: '/p' }, decision: { action: 'pass', upstreamValue: 'v' } },
    ] }), 'r');
    expect(defaults.rules.map((r) => r.decision.statusCode)).toEqual([403, 302, 0]);
  });

  it('method and host: case-insensitive, lists, and *.domain wildcards', () => {
    expect(passes({ method: 'post' }, request({ method: 'POST' }))).toBe(true);
    expect(passes({ method: ['GET', 'HEAD'] }, request({ method: 'DELETE' }))).toBe(false);
    expect(passes({ host: 'App.Example' }, request({ host: 'app.EXAMPLE' }))).toBe(true);
    expect(passes({ host: '*.example' }, request({ host: 'a.b.example' }))).toBe(true);
    expect(passes({ host: '*.example' }, request({ host: 'example' }))).toBe(false);
    expect(passes({ host: '*.example' }, request({ host: '.example' }))).toBe(false);
    expect(passes({ host: ['x.test', 'app.example'] }, request())).toBe(true);
  });

  it('pathPrefix, pathRegex and query on the raw values', () => {
    expect(passes({ pathPrefix: '/api/' }, request({ path: '/api/v1' }))).toBe(true);
    expect(passes({ pathPrefix: '/api/' }, request({ path: '/API/v1' }))).toBe(false);
    expect(passes({ pathRegex: '^/users/[0-9]+$' }, request({ path: '/users/42' }))).toBe(true);
    expect(passes({ pathRegex: '%2F' }, request({ path: '/a%2Fb' }))).toBe(true);
    expect(passes({ query: 'debug=1' }, request({ query: 'debug=1' }))).toBe(true);
    expect(passes({ query: '?debug=1' }, request({ query: 'debug=1' }))).toBe(true);
    expect(passes({ query: 'debug=1' }, request({ query: 'debug=1&x=2' }))).toBe(false);
    expect(passes({ query: '' }, request({ query: '' }))).toBe(true);
  });

  it('clientIp: an address on any port, an exact IP:PORT, or a prefix (IPv4 and IPv6)', () => {
    expect(passes({ clientIp: '203.0.113.7' }, request())).toBe(true);
    expect(passes({ clientIp: '203.0.113.7:51234' }, request())).toBe(true);
    expect(passes({ clientIp: '203.0.113.7:1' }, request())).toBe(false);
    expect(passes({ clientIp: '203.0.113.0/24' }, request())).toBe(true);
    expect(passes({ clientIp: '198.51.100.0/24' }, request())).toBe(false);
    expect(passes({ clientIp: '2001:db8::/32' }, request({ clientIp: '[2001:db8::1]:443' }))).toBe(true);
    expect(passes({ clientIp: '2001:0db8:0::1' }, request({ clientIp: '[2001:db8::1]:443' }))).toBe(true);
    expect(passes({ clientIp: ['10.0.0.0/8', '203.0.113.7'] }, request())).toBe(true);
    expect(passes({ clientIp: '10.0.0.0/8' }, request({ clientIp: '/run/proksi.sock' }))).toBe(false);
  });

  it('header: presence, absence, equals, regex, duplicates and lists (names lower-cased)', () => {
    const auth = request({}, [['authorization', 'Bearer a'], ['accept', '*/*'], ['accept', 'text/html']]);
    expect(passes({ header: { name: 'Authorization' } }, auth)).toBe(true);
    expect(passes({ header: { name: 'authorization', present: false } }, auth)).toBe(false);
    expect(passes({ header: { name: 'cookie', present: false } }, auth)).toBe(true);
    expect(passes({ header: { name: 'authorization', equals: 'Bearer a' } }, auth)).toBe(true);
    expect(passes({ header: { name: 'authorization', equals: 'bearer a' } }, auth)).toBe(false);
    expect(passes({ header: { name: 'authorization', regex: '^Bearer [a-z]+$' } }, auth)).toBe(true);
    expect(passes({ header: { name: 'accept', equals: 'text/html' } }, auth)).toBe(true);
    expect(passes({ header: [{ name: 'accept' }, { name: 'authorization', equals: 'Bearer b' }] }, auth)).toBe(false);
    expect(passes({ header: { name: 'x-missing', present: true } }, auth)).toBe(false);
    expect(passes({ pathPrefix: '/', header: { name: 'accept' }, method: 'GET', clientIp: '203.0.113.0/24' }, auth)).toBe(true);
  });
});

describe('rules: validation names the file, the rule and the field, never a value', () => {
  it('a bad regular expression names the rule and the field', () => {
    const rules = [
      { match: { pathPrefix: '/a' }, decision: { action: 'pass', upstreamValue: 'v' } },
      { match: { pathPrefix: '/b' }, decision: { action: 'pass', upstreamValue: 'v' } },
      { match: { pathPrefix: '/c' }, decision: { action: 'pass', upstreamValue: 'v' } },
      { match: { pathRegex: '^/(admin' }, decision: { action: 'block' } },
    ];
    expect(invalid({ rules })).toBe('rules.json: rules[3].match.pathRegex: invalid regular expression (unterminated group)');
  });

  it('never quotes a header value or pattern, which may be a token', () => {
    const message = invalid({ rules: [{ match: { header: { name: 'authorization', regex: '^Bearer s3cr3t(' } }, decision: { action: 'pass' } }] });
    expect(message).toBe('rules.json: rules[0].match.header.regex: invalid regular expression (unterminated group)');
    expect(invalid({ rules: [{ match: { header: { name: 'authorization', equals: 42 } }, decision: { action: 'pass' } }] })).toBe('rules.json: rules[0].match.header.equals: expected a string');
    expect(invalid({ rules: [{ match: { header: [{ name: 'a' }, { name: 'bad name' }] }, decision: { action: 'pass' } }] })).toBe('rules.json: rules[0].match.header[1].name: not a valid header name');
    expect(invalid({ rules: [{ match: { header: { name: 'a', present: false, equals: 's3cr3t' } }, decision: { action: 'pass' } }] })).toBe('rules.json: rules[0].match.header: "present": false cannot be combined with "equals" or "regex"');
  });

  it('invalid JSON names the line and column, without quoting the text', () => {
    const message = invalid('{\n  "rules": [\n    {"match": {"header": {"name": "authorization", "equals": "Bearer s3cr3t"}} "decision": {}}\n  ]\n}');
    expect(message).toMatch(/^rules\.json:3:\d+: invalid JSON \(syntax error\)$/);
    expect(message).not.toMatch(/s3cr3t/);
  });

  it('shape errors: top level, rules, unknown fields (typos), actions, status codes, clientIp', () => {
    expect(invalid([])).toBe('rules.json: top level: expected an object {"rules": [...], "default": {...}}');
    expect(invalid({})).toBe('rules.json: rules: expected an array of {"match", "decision"}');
    expect(invalid({ rules: [], defaults: {} })).toBe('rules.json: top level: unknown field "defaults" (expected rules, default)');
    expect(invalid({ rules: [{ match: {} }] })).toBe('rules.json: rules[0]: a "decision" is required');
    expect(invalid({ rules: [{ match: { pathprefix: '/a' }, decision: { action: 'pass' } }] })).toMatch(/^rules\.json: rules\[0\]\.match: unknown field "pathprefix" \(expected method, host,/);
    expect(invalid({ rules: [{ decision: { action: 'allow' } }] })).toBe('rules.json: rules[0].decision.action: expected one of pass, block, redirect');
    expect(invalid({ rules: [{ decision: { action: 'block', statusCode: 70000 } }] })).toBe('rules.json: rules[0].decision.statusCode: expected an integer from 0 to 65535');
    expect(invalid({ rules: [{ decision: { action: 'block', statusCode: '403' } }] })).toBe('rules.json: rules[0].decision.statusCode: expected an integer from 0 to 65535');
    expect(invalid({ rules: [{ decision: { action: 'pass', upstreamValue: 1 } }] })).toBe('rules.json: rules[0].decision.upstreamValue: expected a string');
    expect(invalid({ rules: [{ match: { clientIp: ['10.0.0.0/8', '10.0.0.0/33'] }, decision: { action: 'pass' } }] })).toBe('rules.json: rules[0].match.clientIp[1]: expected an IP, IP:PORT or a prefix such as 203.0.113.0/24');
    expect(invalid({ rules: [{ match: { clientIp: 'localhost' }, decision: { action: 'pass' } }] })).toBe('rules.json: rules[0].match.clientIp: expected an IP, IP:PORT or a prefix such as 203.0.113.0/24');
    expect(invalid({ rules: [{ match: { method: [] }, decision: { action: 'pass' } }] })).toBe('rules.json: rules[0].match.method: expected a string or a non-empty list of strings');
    expect(invalid({ rules: [], default: { action: 'redirect', statusCode: -1 } })).toBe('rules.json: default.statusCode: expected an integer from 0 to 65535');
  });

  it('warns about decisions Proksi handles in ways that surprise (without quoting values)', () => {
    const set = parseRules(JSON.stringify({ rules: [
      { match: { pathPrefix: '/p' }, decision: { action: 'pass' } },
      { match: { pathPrefix: '/r' }, decision: { action: 'redirect' } },
      { match: { pathPrefix: '/c' }, decision: { action: 'redirect', redirectLocation: 'https://x/\r\nSet-Cookie: s3cr3t' } },
      { match: { pathPrefix: '/b' }, decision: { action: 'block', statusCode: 42, responseBody: 'denied' } },
    ] }), 'rules.json');
    expect(set.warnings).toEqual([
      'rules.json: rules[0].decision: pass without an upstreamValue: Proksi then lets a client-supplied x-proksi-auth-context through',
      'rules.json: rules[1].decision: redirect without a redirectLocation: Proksi answers 500',
      'rules.json: rules[2].decision: redirectLocation has control bytes: Proksi then lets the request through unauthenticated (fail-open)',
      'rules.json: rules[3].decision: statusCode 42 is outside 100-999: Proksi uses its fallback',
      'rules.json: rules[3].decision: responseBody is never read by Proksi',
    ]);
  });

  it('a missing file is one line naming it', async () => {
    const path = join(dir, 'nope.json');
    await expect(loadRulesFile(path)).rejects.toThrow(new InputError(`rules file ${path}: no such file`));
  });
});

describe('rules: watching the file', () => {
  const watchers: RulesWatcher[] = [];
  afterEach(() => watchers.splice(0).forEach((w) => w.close()));

  const v1 = { rules: [{ match: { pathPrefix: '/a' }, decision: { action: 'block', statusCode: 418 } }] };
  const v2 = { rules: [{ match: { pathPrefix: '/a' }, decision: { action: 'block', statusCode: 419 } }, { match: {}, decision: { action: 'redirect', redirectLocation: '/l' } }] };

  async function watched(name: string): Promise<{ path: string; current: () => RuleSet; lines: string[]; watcher: RulesWatcher }> {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(v1));
    let current = await loadRulesFile(path);
    const lines: string[] = [];
    const watcher = watchRules(path, { current, onReload: (next) => (current = next), log: (l) => lines.push(l), pollMs: 20, debounceMs: 10 });
    watchers.push(watcher);
    return { path, current: () => current, lines, watcher };
  }


  it('a changed file replaces the rules (noticed without being asked)', async () => {
    const w = await watched('reload.json');
    expect(decideByRules(w.current(), request({ path: '/a' })).statusCode).toBe(418);
    writeFileSync(w.path, JSON.stringify(v2));
    await eventually(() => w.current().rules.length === 2);
    expect(decideByRules(w.current(), request({ path: '/a' })).statusCode).toBe(419);
    expect(w.lines).toEqual([`rules file ${w.path}: reloaded, 2 rules`]);
  });

  it('a broken file keeps the last good rules and says why once; a fixed one is taken', async () => {
    const w = await watched('broken.json');
    const good = w.current();
    writeFileSync(w.path, JSON.stringify({ rules: [{ match: {} , decision: { action: 'pass' } }, { match: { pathRegex: '(' }, decision: { action: 'pass' } }] }));
    await w.watcher.check();
    await w.watcher.check(); // the same broken content is not reported twice
    expect(w.current()).toBe(good);
    expect(w.lines).toEqual([`rules file ${w.path}: not reloaded, keeping the last good rules (1): ${w.path}: rules[1].match.pathRegex: invalid regular expression (unterminated group)`]);
    writeFileSync(w.path, '{"rules": [');
    await w.watcher.check();
    expect(w.lines[1]).toBe(`rules file ${w.path}: not reloaded, keeping the last good rules (1): ${w.path}: invalid JSON (it ends too early)`);
    rmSync(w.path);
    await w.watcher.check();
    expect(w.lines[2]).toBe(`rules file ${w.path}: cannot read it (no such file); keeping the last good rules (1)`);
    writeFileSync(w.path, JSON.stringify(v1));
    await w.watcher.check();
    expect(w.lines[3]).toBe(`rules file ${w.path}: back to the rules already loaded (1)`);
    expect(w.current()).toBe(good);
    writeFileSync(w.path, JSON.stringify(v2));
    await eventually(() => w.current().rules.length === 2);
    expect(w.lines[4]).toBe(`rules file ${w.path}: reloaded, 2 rules`);
  });

  it('logs the warnings of newly loaded rules', async () => {
    const w = await watched('warn.json');
    writeFileSync(w.path, JSON.stringify({ rules: [{ match: {}, decision: { action: 'pass' } }] }));
    await w.watcher.check();
    expect(w.lines).toEqual([`rules file ${w.path}: reloaded, 1 rules`, `warning: ${w.path}: rules[0].decision: pass without an upstreamValue: Proksi then lets a client-supplied x-proksi-auth-context through`]);
    expect(readFileSync(w.path, 'utf8')).toContain('pass');
  });
});
