/**
 * A connection's events after its authorization (docs/xray-extauth.md §2.7): connect for a cache
 * hit, heartbeats and disconnects answered in any order and at most once, and a revocation seen
 * by the next heartbeat and the next authorization.
 */
import type { Check } from '../../conformance/check.js';
import type { EventExchange } from '../client.js';
import { facts, runHook, send, shown, type XraySuiteContext } from './context.js';
import { expect2xx, expectPolicyDeny, first } from './extauth-expect.js';

export const lifecycleChecks: Check<XraySuiteContext>[] = [
  {
    id: 'X19', level: 'MUST', requires: ['fixture.allowed'],
    title: 'connect for a connection id never seen in an authorization (the cache-hit path) answers 2xx',
    async run(ctx, t) {
      const e = await send(ctx, 'connect', facts(first(ctx)));
      return expect2xx(t, e, first(ctx), 'connect');
    },
  },
  {
    id: 'X20', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'connect, heartbeat and disconnect answer 2xx within the timeout (the body is ignored)',
    async run(ctx, t) {
      const connection = facts(first(ctx));
      await send(ctx, 'authorization', connection);
      for (const type of ['connect', 'heartbeat', 'disconnect'] as const) {
        const e = await send(ctx, type, connection);
        const failed = expect2xx(t, e, first(ctx), type);
        if (failed) return failed;
      }
    },
  },
  {
    id: 'X21', level: 'MUST', requires: ['fixture.allowed'],
    title: 'five heartbeats for one live connection each answer 200',
    async run(ctx, t) {
      const connection = facts(first(ctx));
      await send(ctx, 'authorization', connection);
      await send(ctx, 'connect', connection);
      for (let i = 1; i <= 5; i++) {
        const e = await send(ctx, 'heartbeat', connection);
        if (e.reply?.status !== 200) return t.fail(`heartbeat ${i} answered ${e.reply?.status ?? e.verdict.reason}`, { ...shown(e, first(ctx)), expected: '200' });
      }
      await send(ctx, 'disconnect', connection);
    },
  },
  {
    id: 'X22', level: 'MUST', requires: ['fixture.revoke'],
    title: 'after revoking a user, its next heartbeat answers 401/403 and a new authorization from another IP answers 401/403',
    async run(ctx, t) {
      const { credential, revoke, restore } = ctx.fixture!.revoke!;
      const connection = facts(credential);
      const before = await send(ctx, 'authorization', connection);
      if (before.verdict.class !== 'allow') return t.skip(`the user to revoke is not allowed to begin with (${before.verdict.reason})`);
      await send(ctx, 'connect', connection);
      try {
        t.evidence({ label: 'revoke hook', received: await runHook(ctx, revoke, credential) });
        const beat = await send(ctx, 'heartbeat', connection);
        const failed = expectPolicyDeny(t, beat, credential, 'the heartbeat after revoking');
        if (failed) return failed;
        const again = await send(ctx, 'authorization', facts(credential, { sourceIp: '198.51.100.99' }));
        return expectPolicyDeny(t, again, credential, 'a new authorization after revoking');
      } finally {
        if (restore) await runHook(ctx, restore, credential);
      }
    },
  },
  {
    id: 'X23', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'a heartbeat for an unknown connection id of a valid user answers 200 (a restarted backend must not kick everyone)',
    async run(ctx, t) {
      const e = await send(ctx, 'heartbeat', facts(first(ctx)));
      if (e.reply?.status !== 200) return t.fail(`answered ${e.reply?.status ?? e.verdict.reason}`, { ...shown(e, first(ctx)), expected: '200' });
    },
  },
  {
    id: 'X24', level: 'MUST', requires: ['fixture.allowed'],
    title: 'disconnect twice, for an unknown id, and before connect each answer 2xx',
    async run(ctx, t) {
      const connection = facts(first(ctx));
      const cases: [string, () => Promise<EventExchange>][] = [
        ['a disconnect before connect', () => send(ctx, 'disconnect', connection)],
        ['the connect after it', () => send(ctx, 'connect', connection)],
        ['a disconnect', () => send(ctx, 'disconnect', connection)],
        ['a second disconnect', () => send(ctx, 'disconnect', connection)],
        ['a disconnect for an unknown id', () => send(ctx, 'disconnect', facts(first(ctx)))],
      ];
      for (const [what, run] of cases) {
        const e = await run();
        const failed = expect2xx(t, e, first(ctx), what);
        if (failed) return failed;
      }
    },
  },
  {
    id: 'X25', level: 'SHOULD', requires: ['fixture.allowed'],
    title: 'events are delivered at most once: heartbeat and disconnect without a prior connect are accepted',
    async run(ctx, t) {
      const connection = facts(first(ctx));
      await send(ctx, 'authorization', connection);
      for (const type of ['heartbeat', 'disconnect'] as const) {
        const e = await send(ctx, type, connection);
        const failed = expect2xx(t, e, first(ctx), `${type} without a connect`, false);
        if (failed) return failed;
      }
    },
  },
];
