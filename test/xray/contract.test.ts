import { describe, expect, it } from 'vitest';
import { readReply, type Reply } from '../../src/xray/contract.js';
import { wiki } from '../../src/xray/wire/dialects/wiki.js';
import { src } from '../../src/xray/wire/dialects/src.js';
import { hysteria2 } from '../../src/xray/wire/dialects/hysteria2.js';

const json = (status: number, body: string, contentType = 'application/json'): Reply => ({ status, body, contentType, truncated: false });
const auth = (reply: Reply) => readReply(wiki, 'authorization', reply);

describe('how Xray reads an authorization reply (docs/xray-extauth.md §2.4)', () => {
  it.each([
    ['200 + user', json(200, '{"user":{"email":"a@x","level":3}}'), 'allow', { email: 'a@x', level: 3 }],
    ['200 + empty user object', json(200, '{"user":{}}'), 'allow', { email: '', level: 0 }],
    ['200 + unknown fields and a future flow', json(200, '{"user":{"email":"a","level":0,"flow":"xtls-rprx-vision"},"extra":1}'), 'allow', { email: 'a', level: 0 }],
    ['200 + null email and level', json(200, '{"user":{"email":null,"level":null}}'), 'allow', { email: '', level: 0 }],
    ['200 + level at the uint32 maximum', json(200, '{"user":{"email":"a","level":4294967295}}'), 'allow', { email: 'a', level: 4294967295 }],
  ])('%s allows', (_name, reply, cls, user) => {
    const verdict = auth(reply);
    expect(verdict).toMatchObject({ verdict: 'allow', class: cls, user });
  });

  it.each([
    ['{}', /"user" is missing/],
    ['{"user":null}', /"user" is null/],
    ['', /empty body/],
    ['{"user":', /invalid JSON/],
    ['null', /the body is null/],
    ['[]', /JSON array, not an object/],
    ['{"user":"alice"}', /"user" is a JSON string/],
    ['{"user":{"level":-1}}', /cannot unmarshal number -1 into uint32/],
    ['{"user":{"level":1.5}}', /cannot unmarshal number 1.5 into uint32/],
    ['{"user":{"level":1.0}}', /cannot unmarshal number 1.0 into uint32/],
    ['{"user":{"level":"0"}}', /cannot unmarshal string into uint32/],
    ['{"user":{"level":4294967296}}', /4294967296 into uint32/],
    ['{"user":{"email":5}}', /"user.email": cannot unmarshal number into string/],
  ])('200 + %s denies as a protocol error, saying which', (body, reason) => {
    const verdict = auth(json(200, body));
    expect(verdict.verdict).toBe('deny');
    expect(verdict.class).toBe('protocol-error');
    expect(verdict.reason).toMatch(reason);
  });

  it.each([
    [401, 'policy-deny'], [403, 'policy-deny'], [500, 'upstream-error'], [503, 'upstream-error'],
    [201, 'protocol-error'], [204, 'protocol-error'], [302, 'protocol-error'], [400, 'protocol-error'], [404, 'protocol-error'], [429, 'protocol-error'],
  ])('%i denies as %s', (status, cls) => {
    expect(auth(json(status, '{"user":{"email":"a"}}'))).toMatchObject({ verdict: 'deny', class: cls });
  });

  it('follows Go where it is lenient, with a warning: trailing bytes and case-insensitive keys', () => {
    const verdict = auth(json(200, '{"User":{"EMAIL":"a@x","Level":2}}garbage'));
    expect(verdict).toMatchObject({ verdict: 'allow', user: { email: 'a@x', level: 2 } });
    expect(verdict.warnings.join('\n')).toMatch(/bytes after the JSON object/);
    expect(verdict.warnings.join('\n')).toMatch(/"User" accepted as "user" only because Go matches keys case-insensitively/);
  });

  it('decodes duplicate keys as Go does: later values overwrite, a second user object fills the first, the first type error wins', () => {
    expect(auth(json(200, '{"user":{"email":"first"},"USER":{"email":"second"}}')).user).toEqual({ email: 'second', level: 0 });
    expect(auth(json(200, '{"user":{"email":"a@x"},"user":{"level":2}}')).user).toEqual({ email: 'a@x', level: 2 });
    expect(auth(json(200, '{"user":{"email":"a@x","level":-1,"level":1}}'))).toMatchObject({ verdict: 'deny', reason: expect.stringMatching(/-1 into uint32/) });
    expect(auth(json(200, '{"user":{"email":"a@x","level":3,"level":null}}')).user).toEqual({ email: 'a@x', level: 3 });
    expect(auth(json(200, '{"user":{"email":"a"},"user":null}'))).toMatchObject({ verdict: 'deny', reason: expect.stringMatching(/"user" is null/) });
  });

  it('folds keys as Go does (U+017F long s, U+212A Kelvin sign) and reads long numbers in unknown fields', () => {
    expect(auth(json(200, '{"u\u017fer":{"email":"a@x"}}')).verdict).toBe('allow');
    expect(auth(json(200, `{"user":{"email":"a@x"},"x":${'9'.repeat(500)}}`)).verdict).toBe('allow');
  });

  it('warns about a missing or wrong Content-Type and an empty email, but still allows', () => {
    const verdict = auth({ status: 200, body: '{"user":{}}', truncated: false });
    expect(verdict.verdict).toBe('allow');
    expect(verdict.warnings.join('\n')).toMatch(/no Content-Type/);
    expect(verdict.warnings.join('\n')).toMatch(/empty email/);
    expect(auth(json(200, '{"user":{"email":"a"}}', 'text/plain')).warnings[0]).toMatch(/text\/plain/);
  });

  it('reads a body cut at the read limit from its beginning', () => {
    expect(auth({ status: 200, body: '{"user":{"email":"a"}}   ', contentType: 'application/json', truncated: true }).verdict).toBe('allow');
    expect(auth({ status: 200, body: '{"user":{"email":"' + 'a'.repeat(100), contentType: 'application/json', truncated: true }).reason).toMatch(/read cap/);
  });
});

describe('how Xray reads notification replies', () => {
  it('ignores connect and disconnect replies, acting on none', () => {
    expect(readReply(src, 'connect', json(500, ''))).toMatchObject({ verdict: 'ignored', class: 'upstream-error' });
    expect(readReply(src, 'disconnect', json(204, ''))).toMatchObject({ verdict: 'allow', class: 'allow' });
    expect(readReply(src, 'connect', json(401, ''))).toMatchObject({ verdict: 'ignored', class: 'policy-deny' });
  });

  it('deletes the cache entry on a heartbeat 401/403, and ends the connection only with kick-on-deny', () => {
    expect(readReply(src, 'heartbeat', json(401, '')).effect).toMatch(/connection stays up/);
    expect(readReply(wiki, 'heartbeat', json(403, '')).effect).toMatch(/connection is ended/);
    expect(readReply(src, 'heartbeat', json(401, ''), true).effect).toMatch(/connection is ended/);
    expect(readReply(src, 'heartbeat', json(500, ''))).toMatchObject({ verdict: 'ignored' });
  });
});

describe('how Hysteria 2 reads a reply (docs/xray-extauth.md §6)', () => {
  const hy = (reply: Reply) => readReply(hysteria2, 'authorization', reply);
  it('allows 200 {"ok":true,"id"} and denies {"ok":false} as a policy deny', () => {
    expect(hy(json(200, '{"ok":true,"id":"alice"}'))).toMatchObject({ verdict: 'allow', user: { id: 'alice' } });
    expect(hy(json(200, '{"ok":false}'))).toMatchObject({ verdict: 'deny', class: 'policy-deny' });
  });

  it('requires the whole body to be one value, unlike ExtAuth', () => {
    expect(hy(json(200, '{"ok":true,"id":"a"} x')).reason).toMatch(/not one JSON value/);
    expect(hy(json(200, '{"ok":"true","id":"a"}')).reason).toMatch(/cannot unmarshal string into bool/);
    expect(hy(json(200, '{"ok":"yes","ok":true,"id":"a"}')).verdict).toBe('deny');
  });

  it('warns about an empty id', () => {
    expect(hy(json(200, '{"ok":true}')).warnings[0]).toMatch(/empty id/);
  });
});
