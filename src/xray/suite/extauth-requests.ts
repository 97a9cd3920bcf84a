/**
 * What the backend must read (docs/xray-extauth.md §2.3, §2.8): malformed bodies refused with a
 * 4xx and never a 5xx, each dialect's bodies as Xray writes them (optional fields left out, unknown
 * fields, any source address), and how it matches credentials Xray may send differently.
 */
import type { Check } from '../../conformance/check.js';
import { uuidFromText } from '../wire/credential.js';
import { facts, postRaw, rawVerdict, send, unknownCredential, type XraySuiteContext } from './context.js';
import { expectAllow, first, keyOf, opened } from './extauth-expect.js';

export const requestChecks: Check<XraySuiteContext>[] = [
  {
    id: 'X07', level: 'MUST',
    title: 'a malformed body (invalid JSON, empty, credential missing or not a string, unknown type) answers 4xx, never 5xx or 200 with a user',
    async run(ctx, t) {
      const keys = Object.fromEntries(ctx.target.dialect.body.map((f) => [f.fact, f.key]));
      const credential = ctx.fixture?.allowed[0]?.credential ?? unknownCredential();
      const bodies: [string, string][] = [
        ['invalid JSON', '{"type":"authorization",'],
        ['an empty body', ''],
        ['no credential', JSON.stringify({ [keys.type ?? 'type']: 'authorization' })],
        ['a numeric credential', JSON.stringify({ [keys.type ?? 'type']: 'authorization', [keys.credential ?? 'credential']: 12345 })],
        ['an unknown type', JSON.stringify({ [keys.type ?? 'type']: 'authkit-unknown', [keys.credential ?? 'credential']: credential })],
        ['a JSON array', '[]'],
      ];
      for (const [what, body] of bodies) {
        if (what === 'an unknown type' && !keys.type) continue;
        const reply = await postRaw(ctx, body);
        const allowed = rawVerdict(ctx, reply)?.class === 'allow';
        if (reply.status === undefined || reply.status < 400 || reply.status >= 500 || allowed) {
          return t.fail(`${what}: ${reply.status === undefined ? reply.error : `answered ${reply.status}`}`, { sent: body.replace(credential, '<credential>'), received: reply, expected: '400 or 422' });
        }
      }
    },
  },
  {
    id: 'X08', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'a valid body with no Content-Type, or text/plain, is handled or refused with 4xx/415, never 5xx',
    async run(ctx, t) {
      const connection = opened(ctx, facts(first(ctx)));
      const body = JSON.stringify({ [keyOf(ctx, 'type')]: 'authorization', [keyOf(ctx, 'credential')]: first(ctx), [keyOf(ctx, 'connectionId')]: connection.connectionId });
      for (const contentType of [null, 'text/plain']) {
        const reply = await postRaw(ctx, body, contentType);
        if (reply.status === undefined || reply.status >= 500) return t.fail(`Content-Type ${contentType ?? 'missing'}: ${reply.error ?? `answered ${reply.status}`}`, { received: reply, expected: '200, or a 4xx' });
      }
    },
  },
  {
    id: 'X09', level: 'MUST', requires: ['fixture.allowed', 'dialect.src'],
    title: 'src dialect: optional fields absent (no protocol, inbound tag, ip or local ip) still allow a valid user',
    async run(ctx, t) {
      const credential = first(ctx);
      const e = await send(ctx, 'authorization', facts(credential, { inboundTag: undefined, sourceIp: '', localIp: '' }));
      return expectAllow(t, e, credential, 'optional fields left out');
    },
  },
  {
    id: 'X10', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'unknown extra fields (the other dialect\'s, a future "flow") are ignored',
    async run(ctx, t) {
      const credential = first(ctx);
      const connection = opened(ctx, facts(credential, { sourceIp: '1.2.3.4' }));
      const body: Record<string, unknown> = { [keyOf(ctx, 'type')]: 'authorization', [keyOf(ctx, 'credential')]: credential, [keyOf(ctx, 'connectionId')]: connection.connectionId };
      Object.assign(body, { flow: 'xtls-rprx-vision', connection_id_extra: 'x', sourceIP: '1.2.3.4', ip: '1.2.3.4', authkitFuture: { nested: true } });
      const reply = await postRaw(ctx, JSON.stringify(body));
      if (rawVerdict(ctx, reply)?.class !== 'allow') return t.fail(`extra fields: ${reply.error ?? `answered ${reply.status}`}`, { received: reply, expected: '200 with the user' });
    },
  },
  {
    id: 'X11', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'a bracketed IPv6, an IPv4 and a non-IP source address all still allow a valid user, without 5xx',
    async run(ctx, t) {
      const credential = first(ctx);
      for (const sourceIp of ['2001:db8::1', '203.0.113.9', 'unix-socket-peer']) {
        const failed = expectAllow(t, await send(ctx, 'authorization', facts(credential, { sourceIp })), credential, `source address ${sourceIp}`);
        if (failed) return failed;
      }
    },
  },
  {
    id: 'X12', level: 'INFO', requires: ['fixture.allowed', 'dialect.uuid'],
    title: 'how the backend treats an upper-case credential and one differing only in bytes 6-7 (VlessRoute)',
    async run(ctx, t) {
      const credential = first(ctx);
      const upper = await send(ctx, 'authorization', facts(credential.toUpperCase()));
      const route = `${credential.slice(0, 14)}${credential[14] === 'f' ? '0' : 'f'}${credential.slice(15)}`;
      const routed = await send(ctx, 'authorization', facts(route));
      return t.info(`upper case: ${upper.verdict.class}; bytes 6-7 changed: ${routed.verdict.class} (upstream Xray ignores bytes 6-7; ExtAuth sends them as the client did)`);
    },
  },
  {
    id: 'X13', level: 'INFO', requires: ['fixture.textIds'],
    title: 'a client configured with a short text id sends its UUIDv5: does the backend match it?',
    async run(ctx, t) {
      const results = [];
      for (const id of ctx.fixture!.textIds) results.push((await send(ctx, 'authorization', facts(uuidFromText(id)))).verdict.class);
      return t.info(`text ids: ${results.join(', ')}`);
    },
  },
];
