/**
 * What the ExtAuth checks expect of a reply, said once: an allow as Xray reads it (and whether only
 * Go's lenient reading allowed it), a policy deny (401/403, docs/xray-extauth.md §2.4), a 2xx for
 * a notification; and the small helpers the checks share.
 */
import type { CheckTools } from '../../conformance/check.js';
import type { EventExchange } from '../client.js';
import type { ConnectionFacts } from '../wire/dialect.js';
import { shown, type XraySuiteContext } from './context.js';

/** The fixture's first allowed credential. */
export const first = (ctx: XraySuiteContext): string => ctx.fixture!.allowed[0]!.credential;
export const is2xx = (e: EventExchange): boolean => e.reply !== undefined && e.reply.status >= 200 && e.reply.status < 300;
const isPolicyDeny = (e: EventExchange): boolean => e.reply?.status === 401 || e.reply?.status === 403;

export function expectAllow(t: CheckTools, e: EventExchange, credential: string, what: string): ReturnType<CheckTools['fail']> | undefined {
  if (e.verdict.class === 'allow') {
    // Allowed, but only because Go reads leniently: a strict client (or the rewrite) may not.
    const lenient = e.verdict.warnings.filter((w) => /Go/.test(w));
    return lenient.length > 0 ? t.warn(`${what}: allowed by Xray only because ${lenient.join('; ')}`, shown(e, credential)) : undefined;
  }
  return t.fail(`${what}: Xray would deny (${e.verdict.class}: ${e.verdict.reason})`, { ...shown(e, credential), expected: '200 with {"user":{"email","level"}}' });
}

export function expectPolicyDeny(t: CheckTools, e: EventExchange, credential: string, what: string): ReturnType<CheckTools['fail']> | undefined {
  if (isPolicyDeny(e)) return undefined;
  const got = e.verdict.class === 'allow' ? 'Xray would ALLOW it' : `${e.verdict.class}: ${e.verdict.reason}`;
  return t.fail(`${what}: ${got}`, { ...shown(e, credential), expected: '401 or 403' });
}

/** A notification's 2xx; `expected` off leaves the expected status out of the failure's details. */
export function expect2xx(t: CheckTools, e: EventExchange, credential: string, what: string, expected = true): ReturnType<CheckTools['fail']> | undefined {
  if (is2xx(e)) return undefined;
  return t.fail(`${what} answered ${e.reply?.status ?? e.verdict.reason}`, expected ? { ...shown(e, credential), expected: '2xx' } : shown(e, credential));
}

/** A connection a raw request opens on the backend, to be disconnected when the check ends. */
export function opened(ctx: XraySuiteContext, connection: ConnectionFacts): ConnectionFacts {
  ctx.check?.open.set(connection.connectionId, connection);
  return connection;
}

/** The dialect's body key for a fact, for a body written by hand. */
export function keyOf(ctx: XraySuiteContext, fact: string): string {
  return ctx.target.dialect.body.find((f) => f.fact === fact)?.key ?? fact;
}
