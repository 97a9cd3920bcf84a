/**
 * The ExtAuth conformance suite (docs/xray-extauth.md §5): what a backend must do for Xray to behave as its
 * operator expects. Titles quote the requirement; IDs are the spec's. X30 (the long load test)
 * belongs to the load engine, and X32 (a backend restart) needs a hook no black box offers.
 */
import type { Check, CheckTools, Suite } from '../../conformance/check.js';
import type { EventExchange } from '../client.js';
import { uuidFromText } from '../wire/credential.js';
import { facts, percentile, postRaw, rawVerdict, runAddress, runHook, send, shown, unknownCredential, withCleanup, type XraySuiteContext } from './context.js';

type XCheck = Check<XraySuiteContext>;

const first = (ctx: XraySuiteContext): string => ctx.fixture!.allowed[0]!.credential;
const isPolicyDeny = (e: EventExchange): boolean => e.reply?.status === 401 || e.reply?.status === 403;
const is2xx = (e: EventExchange): boolean => e.reply !== undefined && e.reply.status >= 200 && e.reply.status < 300;

function expectAllow(t: CheckTools, e: EventExchange, credential: string, what: string): ReturnType<CheckTools['fail']> | undefined {
  if (e.verdict.class === 'allow') {
    // Allowed, but only because Go reads leniently: a strict client (or the rewrite) may not.
    const lenient = e.verdict.warnings.filter((w) => /Go/.test(w));
    return lenient.length > 0 ? t.warn(`${what}: allowed by Xray only because ${lenient.join('; ')}`, shown(e, credential)) : undefined;
  }
  return t.fail(`${what}: Xray would deny (${e.verdict.class}: ${e.verdict.reason})`, { ...shown(e, credential), expected: '200 with {"user":{"email","level"}}' });
}

function expectPolicyDeny(t: CheckTools, e: EventExchange, credential: string, what: string): ReturnType<CheckTools['fail']> | undefined {
  if (isPolicyDeny(e)) return undefined;
  const got = e.verdict.class === 'allow' ? 'Xray would ALLOW it' : `${e.verdict.class}: ${e.verdict.reason}`;
  return t.fail(`${what}: ${got}`, { ...shown(e, credential), expected: '401 or 403' });
}

export const extAuthChecks: XCheck[] = [
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
  {
    id: 'X19', level: 'MUST', requires: ['fixture.allowed'],
    title: 'connect for a connection id never seen in an authorization (the cache-hit path) answers 2xx',
    async run(ctx, t) {
      const e = await send(ctx, 'connect', facts(first(ctx)));
      if (!is2xx(e)) return t.fail(`connect answered ${e.reply?.status ?? e.verdict.reason}`, { ...shown(e, first(ctx)), expected: '2xx' });
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
        if (!is2xx(e)) return t.fail(`${type} answered ${e.reply?.status ?? e.verdict.reason}`, { ...shown(e, first(ctx)), expected: '2xx' });
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
        if (!is2xx(e)) return t.fail(`${what} answered ${e.reply?.status ?? e.verdict.reason}`, { ...shown(e, first(ctx)), expected: '2xx' });
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
        if (!is2xx(e)) return t.fail(`${type} without a connect answered ${e.reply?.status ?? e.verdict.reason}`, shown(e, first(ctx)));
      }
    },
  },
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

/** A connection a raw request opens on the backend, to be disconnected when the check ends. */
function opened(ctx: XraySuiteContext, connection: ReturnType<typeof facts>): ReturnType<typeof facts> {
  ctx.check?.open.set(connection.connectionId, connection);
  return connection;
}

function keyOf(ctx: XraySuiteContext, fact: string): string {
  return ctx.target.dialect.body.find((f) => f.fact === fact)?.key ?? fact;
}

export const extAuthSuite: Suite<XraySuiteContext> = { name: 'xray-extauth', checks: extAuthChecks.map(withCleanup) };

/** Capabilities the dialect and target give, beside the fixture's. */
/** Without these a check does not apply (another dialect's, or a secret check with no secret), rather than lacking input. */
export function inapplicableWithout(capability: string): boolean {
  return capability.startsWith('dialect.') || capability === 'auth.configured';
}

export function targetCapabilities(ctx: XraySuiteContext): Set<string> {
  const has = new Set<string>();
  if (ctx.target.secret !== undefined || ctx.target.headers.length > 0) has.add('auth.configured');
  if (ctx.target.dialect.body.some((f) => f.fact === 'email')) has.add('dialect.hints');
  if (ctx.target.dialect.body.some((f) => f.fact === 'timestamp')) has.add('dialect.timestamp');
  if (ctx.target.dialect.reply === 'extauth-user') has.add('dialect.uuid');
  if (ctx.target.dialect.name === 'src') has.add('dialect.src');
  return has;
}

