/**
 * The ExtAuth conformance suite (docs/xray-extauth.md §5): what a backend must do for Xray to behave as its
 * operator expects. Titles quote the requirement; IDs are the spec's, run in their order, one file
 * per area of the contract. X30 (the long load test) belongs to the load engine, and X32 (a
 * backend restart) needs a hook no black box offers.
 */
import type { Check, Suite } from '../../conformance/check.js';
import { withCleanup, type XraySuiteContext } from './context.js';
import { authorizationChecks } from './extauth-authorization.js';
import { requestChecks } from './extauth-requests.js';
import { replyChecks } from './extauth-replies.js';
import { lifecycleChecks } from './extauth-lifecycle.js';
import { policyChecks } from './extauth-policy.js';

/** X01-X31 in order. */
export const extAuthChecks: Check<XraySuiteContext>[] = [...authorizationChecks, ...requestChecks, ...replyChecks, ...lifecycleChecks, ...policyChecks];

export const extAuthSuite: Suite<XraySuiteContext> = { name: 'xray-extauth', checks: extAuthChecks.map(withCleanup) };

/** Without these a check does not apply (another dialect's, or a secret check with no secret), rather than lacking input. */
export function inapplicableWithout(capability: string): boolean {
  return capability.startsWith('dialect.') || capability === 'auth.configured';
}

/** Capabilities the dialect and target give, beside the fixture's. */
export function targetCapabilities(ctx: XraySuiteContext): Set<string> {
  const has = new Set<string>();
  if (ctx.target.secret !== undefined || ctx.target.headers.length > 0) has.add('auth.configured');
  if (ctx.target.dialect.body.some((f) => f.fact === 'email')) has.add('dialect.hints');
  if (ctx.target.dialect.body.some((f) => f.fact === 'timestamp')) has.add('dialect.timestamp');
  if (ctx.target.dialect.reply === 'extauth-user') has.add('dialect.uuid');
  if (ctx.target.dialect.name === 'src') has.add('dialect.src');
  return has;
}
