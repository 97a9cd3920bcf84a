/**
 * The Hysteria 2 HTTP-auth conformance suite (docs/xray-extauth.md §6), H01-H14. Hysteria calls the backend once per
 * client connection, reads the reply with json.Unmarshal (the whole body, strictly typed) and
 * waits at most 10 s.
 */
import type { Check, CheckTools, Suite } from '../../conformance/check.js';
import type { EventExchange } from '../client.js';
import { facts, percentile, postRaw, rawVerdict, runAddress, runHook, send, shown, withCleanup, type XraySuiteContext } from './context.js';

type HCheck = Check<XraySuiteContext>;

const valid = (ctx: XraySuiteContext): string => ctx.fixture!.allowed[0]!.credential;
const auth = (ctx: XraySuiteContext, credential: string, extra = {}): Promise<EventExchange> => send(ctx, 'authorization', facts(credential, extra));
const okTrue = (e: EventExchange): boolean => e.verdict.class === 'allow';
const no5xx = (t: CheckTools, e: EventExchange, what: string, credential: string) =>
  e.reply === undefined || e.reply.status >= 500 ? t.fail(`${what}: ${e.reply ? `answered ${e.reply.status}` : e.verdict.reason}`, shown(e, credential)) : undefined;

export const hysteriaChecks: HCheck[] = [
  {
    id: 'H01', level: 'MUST', requires: ['fixture.allowed'],
    title: 'a valid auth answers 200 {"ok":true,"id":"<non-empty>"} with ok a JSON boolean',
    async run(ctx, t) {
      const e = await auth(ctx, valid(ctx));
      if (!okTrue(e)) return t.fail(`Hysteria would refuse the client (${e.verdict.class}: ${e.verdict.reason})`, { ...shown(e, valid(ctx)), expected: '200 {"ok":true,"id":"..."}' });
      if ((e.verdict.user as { id: string }).id === '') return t.fail('id is empty: traffic stats are keyed on it');
    },
  },
  {
    id: 'H02', level: 'MUST',
    title: 'an invalid auth answers ok:false with 200, or any non-200; never ok:true',
    async run(ctx, t) {
      const e = await auth(ctx, `authkit-invalid-${Date.now()}`);
      if (okTrue(e)) return t.fail('an invalid auth string was accepted', shown(e, ''));
    },
  },
  {
    id: 'H03', level: 'MUST', requires: ['fixture.allowed'],
    title: 'a valid auth repeated 20 times (reconnects) gets the same id every time',
    async run(ctx, t) {
      const ids = new Set<string>();
      for (let i = 0; i < 20; i++) ids.add(JSON.stringify((await auth(ctx, valid(ctx))).verdict.user ?? null));
      if (ids.size !== 1) return t.fail(`ids differed across reconnects: ${[...ids].join(', ')}`);
    },
  },
  {
    id: 'H04', level: 'SHOULD', requires: ['fixture.allowed.two'],
    title: 'distinct users get distinct ids',
    async run(ctx, t) {
      const [a, b] = ctx.fixture!.allowed;
      const ida = JSON.stringify((await auth(ctx, a!.credential)).verdict.user ?? null);
      const idb = JSON.stringify((await auth(ctx, b!.credential)).verdict.user ?? null);
      if (ida === idb) return t.fail(`two users share the id ${ida}: their traffic would be counted together`);
    },
  },
  {
    id: 'H05', level: 'MUST', requires: ['fixture.allowed'],
    title: 'the reply is a single JSON object with nothing after it (json.Unmarshal is strict)',
    async run(ctx, t) {
      const e = await auth(ctx, valid(ctx));
      if (e.reply?.status === 200 && /not one JSON value|cannot unmarshal/.test(e.verdict.reason)) return t.fail(e.verdict.reason, shown(e, valid(ctx)));
    },
  },
  {
    id: 'H06', level: 'MUST', requires: ['fixture.allowed'],
    title: 'latency: p99 under Hysteria\'s 10 s timeout (MUST), under 500 ms (SHOULD)',
    async run(ctx, t) {
      const latencies: number[] = [];
      for (let i = 0; i < 40; i++) latencies.push((await auth(ctx, valid(ctx))).latencyMs);
      const p99 = percentile(latencies, 99);
      if (p99 >= 10_000) return t.fail(`p99 ${p99} ms: Hysteria gives up after 10 s`);
      if (p99 >= 500) return t.warn(`p99 ${p99} ms: every client (re)connect waits for it`);
      return t.pass(`p50 ${percentile(latencies, 50)} ms, p99 ${p99} ms`);
    },
  },
  {
    id: 'H07', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'addr as a bracketed IPv6 and as an IPv4 are both handled',
    async run(ctx, t) {
      for (const sourceIp of ['2001:db8::5', '203.0.113.5']) {
        const e = await auth(ctx, valid(ctx), { sourceIp });
        if (!okTrue(e)) return t.fail(`addr with ${sourceIp}: ${e.verdict.reason}`, shown(e, valid(ctx)));
      }
    },
  },
  {
    id: 'H08', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'tx of 0, 12500000 and 2^63 causes no 5xx (JavaScript\'s JSON.parse loses precision above 2^53)',
    async run(ctx, t) {
      for (const tx of ['0', '12500000', '9223372036854775808']) {
        const failed = no5xx(t, await auth(ctx, valid(ctx), { tx }), `tx ${tx}`, valid(ctx));
        if (failed) return failed;
      }
    },
  },
  {
    id: 'H09', level: 'SHOULD',
    title: 'an empty, a 1 KB, a unicode and a user:pass auth string cause no 5xx',
    async run(ctx, t) {
      for (const credential of ['', 'x'.repeat(1024), 'пароль-密码-🔑', 'user:pass']) {
        const failed = no5xx(t, await auth(ctx, credential), `auth of ${Buffer.byteLength(credential)} bytes`, credential);
        if (failed) return failed;
      }
    },
  },
  {
    id: 'H10', level: 'MUST',
    title: 'a malformed request (not JSON, missing fields) never gets ok:true',
    async run(ctx, t) {
      for (const body of ['not json', '{}', '{"addr":"203.0.113.5:1"}', '[]']) {
        const reply = await postRaw(ctx, body);
        if (rawVerdict(ctx, reply)?.class === 'allow') return t.fail(`"${body}" got ok:true`, { sent: body, received: reply, expected: '400, or ok:false' });
      }
    },
  },
  {
    id: 'H11', level: 'MUST', requires: ['fixture.revoke'],
    title: 'after revoking a user (as after a /kick), its reconnect gets ok:false',
    async run(ctx, t) {
      const { credential, revoke, restore } = ctx.fixture!.revoke!;
      if (!okTrue(await auth(ctx, credential))) return t.skip('the user to revoke is not allowed to begin with');
      try {
        t.evidence({ label: 'revoke hook', received: await runHook(ctx, revoke, credential) });
        const again = await auth(ctx, credential);
        if (okTrue(again)) return t.fail('the revoked user reconnected', shown(again, credential));
      } finally {
        if (restore) await runHook(ctx, restore, credential);
      }
    },
  },
  {
    id: 'H12', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'a burst of parallel auths is answered consistently, without 5xx',
    async run(ctx, t) {
      const all = await Promise.all(Array.from({ length: ctx.burst }, () => auth(ctx, valid(ctx))));
      const bad = all.find((e) => e.verdict.class !== 'allow');
      if (bad) return t.fail(`${all.filter((e) => e.verdict.class !== 'allow').length} of ${ctx.burst} were not ok:true (${bad.verdict.reason})`, shown(bad, valid(ctx)));
      return t.pass(`${ctx.burst} parallel, all ok:true`);
    },
  },
  {
    id: 'H13', level: 'INFO', requires: ['fixture.allowed'],
    title: 'Hysteria sends no Authorization header: the backend must not require one',
    async run(ctx, t) {
      const e = await send(ctx, 'authorization', facts(valid(ctx)), { auth: 'omit' });
      return t.info(okTrue(e) ? 'works without any header, as Hysteria calls it' : `without headers: ${e.verdict.reason} (Hysteria cannot send a header: use a token in the URL)`);
    },
  },
  {
    id: 'H14', level: 'SHOULD', requires: ['fixture.sessionLimit'],
    title: 'with a limit of k devices, the (k+1)-th client address is refused',
    async run(ctx, t) {
      const { credential, maxIps } = ctx.fixture!.sessionLimit!;
      for (let i = 0; i < maxIps; i++) {
        const e = await auth(ctx, credential, { sourceIp: runAddress(ctx, i) });
        if (!okTrue(e)) return t.fail(`client ${i + 1} of ${maxIps} was refused: ${e.verdict.reason}`, shown(e, credential));
      }
      const extra = await auth(ctx, credential, { sourceIp: runAddress(ctx, maxIps) });
      if (okTrue(extra)) return t.fail(`client ${maxIps + 1} was accepted with a limit of ${maxIps}`, shown(extra, credential));
    },
  },
];

export const hysteriaSuite: Suite<XraySuiteContext> = { name: 'hysteria2-http-auth', checks: hysteriaChecks.map(withCleanup) };
