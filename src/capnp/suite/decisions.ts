/**
 * C01-C06: the decisions a service gives, judged by what Proksi does with them
 * (docs/proksi-external-auth.md §5), including its two fail-opens (C04, C05). C01 comes first:
 * every later check needs a call to be answered at all, as Proksi makes its first one (§3).
 */
import type { Check } from '../../conformance/check.js';
import { hasControlBytes, proksiOutcome } from '../model.js';
import { BASE, call, expectEach, type CapnpSuiteContext } from './context.js';

export const decisionChecks: Check<CapnpSuiteContext>[] = [
  {
    id: 'C01', level: 'MUST',
    title: 'the bootstrap and a first call pipelined on its promised answer are answered',
    async run(ctx, t) {
      const decision = await call(ctx, BASE);
      return t.pass(`answered ${decision.action} ${decision.statusCode}`);
    },
  },
  {
    id: 'C02', level: 'MUST', requires: ['fixture.pass'],
    title: 'a request that must pass gets pass with a non-empty upstreamValue',
    run: (ctx, t) =>
      // Judged by what Proksi does with it: proxied, with the upstream header set.
      expectEach(ctx, t, ctx.fixture!.pass, `pass with an upstreamValue Proksi can set as ${ctx.options.upstreamHeader}`, (decision, request) => {
        const { proksi } = proksiOutcome(decision, request, ctx.options);
        return proksi.outcome === 'proxied' && decision.upstreamValue !== '' &&
          proksi.headers.some(([name, value]) => name === ctx.options.upstreamHeader && value === decision.upstreamValue);
      }),
  },
  {
    id: 'C03', level: 'MUST', requires: ['fixture.block'],
    title: 'a request that must be blocked gets block with a 4xx status',
    run: (ctx, t) =>
      expectEach(ctx, t, ctx.fixture!.block, 'block with a 4xx', (decision) => decision.action === 'block' && decision.statusCode >= 400 && decision.statusCode <= 499),
  },
  {
    id: 'C04', level: 'MUST',
    title: `a client-supplied upstream header (x-proksi-auth-context) never reaches the upstream`,
    async run(ctx, t) {
      const spoof: [string, string] = [ctx.options.upstreamHeader, 'authkit-spoofed'];
      const requests = [BASE, ...(ctx.fixture?.pass ?? []), ...(ctx.fixture?.block ?? [])].map((r) => ({ ...r, headers: [...r.headers, spoof] }));
      for (const request of requests) {
        const decision = await call(ctx, request);
        const { proksi } = proksiOutcome(decision, request, ctx.options);
        const upstream = proksi.outcome === 'proxied' || proksi.outcome === 'fail-open';
        if (upstream && proksi.headers.some(([name, value]) => name.toLowerCase() === ctx.options.upstreamHeader && value === spoof[1])) {
          return t.fail(`${request.method} ${request.path}: the spoofed header reaches the upstream (${decision.action}, upstreamValue ${JSON.stringify(decision.upstreamValue)})`, { received: decision, expected: 'pass with a non-empty upstreamValue, or a block' });
        }
      }
    },
  },
  {
    id: 'C05', level: 'MUST',
    title: 'no control bytes in upstreamValue or redirectLocation (Proksi would let the request through unauthenticated)',
    async run(ctx, t) {
      if (ctx.decisions.length === 0) await call(ctx, BASE);
      const bad = ctx.decisions.find((d) => hasControlBytes(d.upstreamValue) || hasControlBytes(d.redirectLocation));
      if (bad) return t.fail('a decision with control bytes', { received: bad });
      return t.pass(`${ctx.decisions.length} decisions so far, none with control bytes`);
    },
  },
  {
    id: 'C06', level: 'SHOULD', requires: ['fixture.redirect'],
    title: 'redirects carry a Location and a 3xx status',
    run: (ctx, t) =>
      expectEach(ctx, t, ctx.fixture!.redirect, 'redirect, 3xx, with a Location Proksi can send', (decision, request) => {
        const { proksi } = proksiOutcome(decision, request, ctx.options);
        return proksi.outcome === 'redirected' && proksi.status !== undefined && proksi.status >= 300 && proksi.status <= 399;
      }),
  },
];
