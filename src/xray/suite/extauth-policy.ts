/**
 * The limits operators set and how decisions are made (docs/xray-extauth.md §5): IP limits and
 * quotas, decisions from the credential alone, clock skew, and no enumeration oracle.
 */
import type { Check } from '../../conformance/check.js';
import { facts, runAddress, send, shown, unknownCredential, type XraySuiteContext } from './context.js';
import { expectAllow, expectPolicyDeny, first } from './extauth-expect.js';

export const policyChecks: Check<XraySuiteContext>[] = [
  {
    id: 'X26', level: 'SHOULD', requires: ['fixture.sessionLimit'],
    title: 'with a limit of k IPs, the (k+1)-th new IP is denied with 401/403, and a disconnect frees a slot',
    async run(ctx, t) {
      const { credential, maxIps } = ctx.fixture!.sessionLimit!;
      const live = [];
      for (let i = 0; i < maxIps; i++) {
        const connection = facts(credential, { sourceIp: runAddress(ctx, i) });
        const e = await send(ctx, 'authorization', connection);
        const failed = expectAllow(t, e, credential, `IP ${i + 1} of ${maxIps}`);
        if (failed) return failed;
        await send(ctx, 'connect', connection);
        live.push(connection);
      }
      const extra = await send(ctx, 'authorization', facts(credential, { sourceIp: runAddress(ctx, maxIps) }));
      const failed = expectPolicyDeny(t, extra, credential, `IP ${maxIps + 1} with a limit of ${maxIps}`);
      if (failed) return failed;
      await send(ctx, 'disconnect', live.shift()!);
      const freed = await send(ctx, 'authorization', facts(credential, { sourceIp: runAddress(ctx, 200) }));
      return expectAllow(t, freed, credential, 'a new IP after a disconnect freed a slot');
    },
  },
  {
    id: 'X27', level: 'SHOULD', requires: ['fixture.overQuota'],
    title: 'a user over quota is denied with 403 on authorization and 401/403 on its next heartbeat',
    async run(ctx, t) {
      const { credential } = ctx.fixture!.overQuota!;
      const connection = facts(credential);
      const auth = await send(ctx, 'authorization', connection);
      if (auth.reply?.status !== 403) return t.fail(`authorization answered ${auth.reply?.status ?? auth.verdict.reason}`, { ...shown(auth, credential), expected: '403' });
      return expectPolicyDeny(t, await send(ctx, 'heartbeat', connection), credential, 'the heartbeat');
    },
  },
  {
    id: 'X28', level: 'MUST', requires: ['fixture.allowed', 'dialect.hints'],
    title: 'the decision and the returned user depend on the credential alone, not on the request\'s email/level hints',
    async run(ctx, t) {
      const credential = first(ctx);
      const plain = await send(ctx, 'authorization', facts(credential));
      const hinted = await send(ctx, 'authorization', facts(credential, { email: 'someone-else@example.com', level: 7 }));
      if (JSON.stringify(plain.verdict.user ?? null) !== JSON.stringify(hinted.verdict.user ?? null) || plain.verdict.class !== hinted.verdict.class) {
        return t.fail('hints changed the answer', { sent: 'email someone-else@example.com, level 7', received: { without: plain.verdict.user ?? plain.verdict.class, with: hinted.verdict.user ?? hinted.verdict.class } });
      }
      const unknown = await send(ctx, 'authorization', facts(unknownCredential(), { email: 'admin@example.com', level: 0 }));
      return expectPolicyDeny(t, unknown, '', 'an unknown credential with a valid-looking email hint');
    },
  },
  {
    id: 'X29', level: 'SHOULD', requires: ['fixture.allowed', 'dialect.timestamp'],
    title: 'a timestamp skewed by 300 s either way is not rejected',
    async run(ctx, t) {
      for (const skew of [-300, 300]) {
        const e = await send(ctx, 'authorization', facts(first(ctx)), { now: new Date(Date.now() + skew * 1000) });
        const failed = expectAllow(t, e, first(ctx), `timestamp ${skew > 0 ? '+' : ''}${skew} s`);
        if (failed) return failed;
      }
    },
  },
  {
    id: 'X31', level: 'INFO', requires: ['fixture.denied'],
    title: 'an unknown and a disabled credential get the same status class and similar latency (no enumeration oracle)',
    async run(ctx, t) {
      const disabled = ctx.fixture!.denied[0]!.credential;
      const a = await send(ctx, 'authorization', facts(unknownCredential()));
      const b = await send(ctx, 'authorization', facts(disabled));
      return t.info(`unknown: ${a.reply?.status ?? a.verdict.class} in ${a.latencyMs} ms; denied fixture user: ${b.reply?.status ?? b.verdict.class} in ${b.latencyMs} ms`);
    },
  },
];
