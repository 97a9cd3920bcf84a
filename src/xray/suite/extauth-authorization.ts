/**
 * Who gets in (docs/xray-extauth.md §2.4, §5 MUST): an allowed user answered 200 with a usable
 * user, unknown and denied ones 401/403 (never 200 with a user), and no answer without the secret.
 */
import type { Check } from '../../conformance/check.js';
import { facts, send, shown, unknownCredential, type XraySuiteContext } from './context.js';
import { expectAllow, expectPolicyDeny, first } from './extauth-expect.js';

export const authorizationChecks: Check<XraySuiteContext>[] = [
  {
    id: 'X01', level: 'MUST', requires: ['fixture.allowed'],
    title: 'authorization for a known credential answers 200 with a user: email a string, level an integer 0..2^32-1',
    async run(ctx, t) {
      const credential = first(ctx);
      return expectAllow(t, await send(ctx, 'authorization', facts(credential)), credential, 'the allowed fixture user');
    },
  },
  {
    id: 'X02', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'the returned user.email is non-empty (Xray keys per-user stats on it)',
    async run(ctx, t) {
      const e = await send(ctx, 'authorization', facts(first(ctx)));
      const user = e.verdict.user as { email?: string } | undefined;
      if (!user) return t.skip('the allowed user is not allowed (see X01)');
      if (user.email === '') return t.fail('user.email is empty: Xray keeps no traffic stats or online state for this user', shown(e, first(ctx)));
    },
  },
  {
    id: 'X03', level: 'MUST',
    title: 'authorization for an unknown credential answers 401 or 403 (not 200 with a user, not 5xx)',
    async run(ctx, t) {
      const credential = unknownCredential();
      return expectPolicyDeny(t, await send(ctx, 'authorization', facts(credential)), credential, 'a random unknown UUID');
    },
  },
  {
    id: 'X04', level: 'MUST', requires: ['fixture.denied'],
    title: 'authorization for a disabled, expired or over-quota user answers 401 or 403',
    async run(ctx, t) {
      for (const user of ctx.fixture!.denied) {
        const failed = expectPolicyDeny(t, await send(ctx, 'authorization', facts(user.credential)), user.credential, `the denied fixture user (${user.why ?? 'no reason given'})`);
        if (failed) return failed;
      }
    },
  },
  {
    id: 'X05', level: 'SHOULD',
    title: 'denials are 401/403, not a 200 with {} or {"user":null} (Xray denies those too, but silently and ambiguously)',
    async run(ctx, t) {
      const credentials = [unknownCredential(), ...(ctx.fixture?.denied.map((u) => u.credential) ?? [])];
      for (const credential of credentials) {
        const e = await send(ctx, 'authorization', facts(credential));
        // No reply is no evidence: the check did not see a denial at all.
        if (!e.reply) return t.fail(`no reply: ${e.verdict.reason}`, shown(e, credential));
        if (e.reply.status === 200 && e.verdict.verdict === 'deny') return t.fail(`a deny sent as 200: ${e.verdict.reason}`, shown(e, credential));
      }
    },
  },
  {
    id: 'X06', level: 'MUST', requires: ['auth.configured', 'fixture.allowed'],
    title: 'a request without, or with a wrong, secret or configured header answers 401 or 403, never 200 with a user',
    async run(ctx, t) {
      // A user the backend allows with the right secret, or the check proves nothing.
      const credential = first(ctx);
      const control = await send(ctx, 'authorization', facts(credential));
      if (control.verdict.class !== 'allow') return t.skip(`the allowed fixture user is not allowed even with the secret (${control.verdict.reason})`);
      const none = await send(ctx, 'authorization', facts(credential), { auth: 'omit' });
      const failed = expectPolicyDeny(t, none, credential, 'no secret or header');
      if (failed) return failed;
      const wrongHeaders = ctx.target.headers.map(([name]): [string, string] => [name, 'authkit-wrong-value']);
      const wrong = await send(ctx, 'authorization', facts(credential), { auth: { secret: ctx.target.secret === undefined ? undefined : 'authkit-wrong-secret', headers: wrongHeaders } });
      return expectPolicyDeny(t, wrong, credential, 'a wrong secret or header');
    },
  },
];
