/**
 * How the backend answers under the proxy's habits (docs/xray-extauth.md §2.2, §2.6): the same
 * decision every time, within the timeout, for a burst without single-flight, with large headers,
 * and without redirects Go would follow.
 */
import type { Check } from '../../conformance/check.js';
import { facts, percentile, send, shown, type XraySuiteContext } from './context.js';
import { expectAllow, first } from './extauth-expect.js';

export const replyChecks: Check<XraySuiteContext>[] = [
  {
    id: 'X14', level: 'MUST', requires: ['fixture.allowed'],
    title: '50 authorizations of one credential with new connection ids get the same decision and user (cache hits skip authorization)',
    async run(ctx, t) {
      const credential = first(ctx);
      const seen = new Set<string>();
      for (let i = 0; i < 50; i++) {
        const e = await send(ctx, 'authorization', facts(credential));
        seen.add(`${e.verdict.class} ${JSON.stringify(e.verdict.user ?? null)}`);
        if (seen.size > 1) return t.fail(`authorization ${i + 1} of 50 differed: ${[...seen].join(' then ')}`, shown(e, credential));
      }
    },
  },
  {
    id: 'X15', level: 'MUST', requires: ['fixture.allowed'],
    title: 'authorization latency under light load: p99 under the proxy timeout (MUST), under 200 ms (SHOULD)',
    async run(ctx, t) {
      const latencies: number[] = [];
      for (let i = 0; i < 40; i++) latencies.push((await send(ctx, 'authorization', facts(first(ctx)))).latencyMs);
      const p99 = percentile(latencies, 99);
      const timeoutMs = (ctx.target.timeoutSeconds || 5) * 1000;
      if (p99 >= timeoutMs) return t.fail(`p99 ${p99} ms is not under the ${timeoutMs} ms timeout: connections would be denied`);
      if (p99 >= 200) return t.warn(`p99 ${p99} ms: every new connection waits for it`);
      return t.pass(`p50 ${percentile(latencies, 50)} ms, p99 ${p99} ms over 40 sequential requests`);
    },
  },
  {
    id: 'X16', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'a burst of parallel authorizations for one credential and IP (Xray has no single-flight): consistent, no 5xx, no 429',
    async run(ctx, t) {
      const credential = first(ctx);
      const all = await Promise.all(Array.from({ length: ctx.burst }, () => send(ctx, 'authorization', facts(credential, { sourceIp: '198.51.100.20' }))));
      const classes = new Map<string, number>();
      for (const e of all) classes.set(`${e.reply?.status ?? e.verdict.class}`, (classes.get(`${e.reply?.status ?? e.verdict.class}`) ?? 0) + 1);
      const bad = all.find((e) => e.verdict.class === 'upstream-error' || e.reply?.status === 429 || e.verdict.class !== all[0]!.verdict.class);
      if (bad) return t.fail(`${ctx.burst} parallel: ${[...classes].map(([k, n]) => `${n} x ${k}`).join(', ')}`, shown(bad, credential));
      return t.pass(`${ctx.burst} parallel: ${[...classes].map(([k, n]) => `${n} x ${k}`).join(', ')}`);
    },
  },
  {
    id: 'X17', level: 'SHOULD', requires: ['fixture.allowed'],
    title: '16 KB of headers (a long JWT, say) cause no 431 or 400',
    async run(ctx, t) {
      const credential = first(ctx);
      const e = await send(ctx, 'authorization', facts(credential), { extraHeaders: [['X-Authkit-Padding', 'a'.repeat(16 * 1024)]] });
      if (e.reply?.status === 431 || e.reply?.status === 400) return t.fail(`answered ${e.reply.status} to 16 KB of headers`, shown(e, credential));
      return expectAllow(t, e, credential, 'with 16 KB of headers');
    },
  },
  {
    id: 'X18', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'replies are not redirects (Go follows them, a 301/302/303 as a bodiless GET) and a 200 says Content-Type: application/json',
    async run(ctx, t) {
      const e = await send(ctx, 'authorization', facts(first(ctx)));
      if (e.redirects.length > 0) {
        const chain = e.redirects.map((r) => `${r.status} -> ${r.location}`).join(', ');
        return t.fail(`redirected (${chain}); Go followed it to a final ${e.reply?.status ?? e.verdict.reason}, verdict ${e.verdict.class}`, { ...shown(e, first(ctx)), expected: 'a direct answer (no redirect)' });
      }
      if (e.reply && e.reply.status >= 300 && e.reply.status < 400) return t.fail(`a ${e.reply.status} that Go does not follow`, shown(e, first(ctx)));
      if (e.reply?.status === 200 && !/^application\/json/i.test(e.reply.headers['content-type'] ?? '')) {
        return t.warn(`Content-Type is ${e.reply.headers['content-type'] ?? 'missing'} (Xray does not check it)`);
      }
    },
  },
];
