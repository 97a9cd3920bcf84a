/**
 * C12-C14: the connection as Proksi uses it (docs/proksi-external-auth.md §3): many calls one
 * after the other on one connection, a fresh connection after one was dropped mid-call, and an
 * exception (not a hang) for a call this service does not implement, worded as in §6.
 */
import type { Check } from '../../conformance/check.js';
import { AuthServiceClient, CallError } from '../client.js';
import { buildAuthRequest } from '../model.js';
import { BASE, call, type CapnpSuiteContext } from './context.js';

export const connectionChecks: Check<CapnpSuiteContext>[] = [
  {
    id: 'C12', level: 'MUST',
    title: '100 sequential calls on one connection (as Proksi sends them) are all answered, consistently',
    async run(ctx, t) {
      const request = buildAuthRequest(ctx.fixture?.pass[0] ?? BASE, ctx.options).request;
      const connection = await AuthServiceClient.connect(ctx.socket, ctx.options.timeoutMs);
      try {
        const seen = new Set<string>();
        for (let i = 0; i < 100; i++) {
          const { decision, latencyMs } = await connection.check(request, { timeoutMs: ctx.options.timeoutMs * 5 });
          ctx.latencies.push(latencyMs);
          ctx.decisions.push(decision);
          // A fresh token per call is fine; the decision itself must not change.
          seen.add(`${decision.action} ${decision.statusCode} ${decision.upstreamValue === '' ? 'no upstream value' : 'an upstream value'}`);
        }
        if (seen.size > 1) return t.fail(`the same request got different decisions: ${[...seen].join(' | ')}`);
      } finally {
        connection.close();
      }
    },
  },
  {
    id: 'C13', level: 'MUST',
    title: 'a new connection works after the previous one was dropped with a call in flight',
    async run(ctx, t) {
      const dropped = await AuthServiceClient.connect(ctx.socket, ctx.options.timeoutMs);
      const inFlight = dropped.check(buildAuthRequest(BASE, ctx.options).request).catch(() => undefined);
      dropped.close();
      await inFlight;
      const decision = await call(ctx, BASE);
      return t.pass(`the next connection was answered ${decision.action}`);
    },
  },
  {
    id: 'C14', level: 'MUST',
    title: 'an unknown method or interface ID gets an exception, not a hang',
    async run(ctx, t) {
      for (const [what, options] of [['method 7', { methodId: 7 }], ['interface 0x1234', { interfaceId: 0x1234n }]] as const) {
        const connection = await AuthServiceClient.connect(ctx.socket, ctx.options.timeoutMs);
        try {
          const request = buildAuthRequest(BASE, ctx.options).request;
          const outcome = await connection.check(request, { timeoutMs: ctx.options.timeoutMs * 5, ...options }).then(
            (reply) => ({ decision: reply.decision }),
            (error: unknown) => ({ error }),
          );
          if ('decision' in outcome) return t.fail(`${what} was answered as if it were check()`, { received: outcome.decision, expected: 'an exception Return' });
          if (!(outcome.error instanceof CallError) || outcome.error.kind !== 'exception') {
            return t.fail(`${what}: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`, { expected: 'an exception Return, the connection kept' });
          }
          // An exception answers one call; the connection must go on serving.
          await connection.check(request, { timeoutMs: ctx.options.timeoutMs * 5 });
        } catch (error) {
          return t.fail(`after ${what}, the connection no longer serves: ${error instanceof Error ? error.message : String(error)}`);
        } finally {
          connection.close();
        }
      }
    },
  },
];
