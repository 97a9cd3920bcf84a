/**
 * The Proksi external_auth conformance suite (C01-C15): what a service must do for Proksi to
 * behave as its operator expects, checked over the wire as Proksi calls it.
 */
import type { Check, CheckTools, Suite } from '../../conformance/check.js';
import { InputError } from '../../shared/errors.js';
import { AuthServiceClient, CallError } from '../client.js';
import { buildAuthRequest, clientRequest, hasControlBytes, proksiOutcome, type ClientRequest, type ClientRequestSpec, type ProksiOptions } from '../model.js';
import type { AuthDecision } from '../wire/schema.js';

export interface CapnpFixture {
  pass: ClientRequest[];
  block: ClientRequest[];
  redirect: ClientRequest[];
}

export interface CapnpSuiteContext {
  socket: string;
  options: ProksiOptions;
  fixture?: CapnpFixture;
  /** Every reply's latency in the run, for C07. */
  latencies: number[];
  /** Every decision seen, for C05. */
  decisions: AuthDecision[];
}

/** An HTTP/1.1 request for / with only its Host header. */
const BASE: ClientRequest = clientRequest({});
/** BASE with `headers` after its Host header. */
const withHeaders = (headers: [string, string][]): ClientRequest => ({ ...BASE, headers: [...BASE.headers, ...headers] });

/** One call on its own connection, as Proksi's first request after a (re)connect. */
async function call(ctx: CapnpSuiteContext, client: ClientRequest, options: { interfaceId?: bigint; methodId?: number } = {}): Promise<AuthDecision> {
  const connection = await AuthServiceClient.connect(ctx.socket, ctx.options.timeoutMs);
  try {
    const { decision, latencyMs } = await connection.check(buildAuthRequest(client, ctx.options).request, { timeoutMs: ctx.options.timeoutMs * 5, ...options });
    ctx.latencies.push(latencyMs);
    ctx.decisions.push(decision);
    return decision;
  } finally {
    connection.close();
  }
}

/** Calls each fixture request; fails at the first decision `accepts` refuses, saying what was expected. */
async function expectEach(
  ctx: CapnpSuiteContext, t: CheckTools, requests: ClientRequest[], expected: string, accepts: (decision: AuthDecision, request: ClientRequest) => boolean,
): Promise<ReturnType<CheckTools['fail']> | undefined> {
  for (const request of requests) {
    const decision = await call(ctx, request);
    if (!accepts(decision, request)) return t.fail(`${request.method} ${request.path}: got ${decision.action} ${decision.statusCode}`, { received: decision, expected });
  }
  return undefined;
}

const checks: Check<CapnpSuiteContext>[] = [
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
  ...(
    [
      // Host is one of the 32.
      ['C08', 'a request with 32 headers (Proksi\'s max_headers) is answered', Array.from({ length: 31 }, (_, i): [string, string] => [`x-h${i}`, `v${i}`])],
      ['C09', 'a request with no headers (an HTTP/2 client sends no Host) is answered', []],
      ['C10', 'a request whose header values were not ASCII (Proksi sends "") is answered', [['x-name', 'Jürgen'], ['x-other', 'ünïcödé']]],
      ['C11', 'a request with a 64 KiB header value is answered', [['x-big', 'a'.repeat(64 * 1024)]]],
    ] as [string, string, [string, string][]][]
  ).map(([id, title, headers]): Check<CapnpSuiteContext> => ({
    id, level: 'SHOULD', title,
    async run(ctx, t) {
      const decision = await call(ctx, id === 'C09' ? clientRequest({ http2: true }) : withHeaders(headers));
      return t.pass(`answered ${decision.action} ${decision.statusCode}`);
    },
  })),
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
  {
    id: 'C07', level: 'MUST',
    title: 'every reply in this run came within timeout_ms (Proksi would apply on_error otherwise)',
    async run(ctx, t) {
      if (ctx.latencies.length === 0) await call(ctx, BASE);
      const slowest = Math.max(0, ...ctx.latencies);
      if (slowest >= ctx.options.timeoutMs) return t.fail(`the slowest of ${ctx.latencies.length} replies took ${slowest} ms, timeout_ms is ${ctx.options.timeoutMs}`);
      return t.pass(`slowest of ${ctx.latencies.length} replies: ${slowest} ms`);
    },
  },
  {
    id: 'C15', level: 'INFO',
    title: 'responseBody is never read by Proksi',
    async run(ctx, t) {
      const withBody = ctx.decisions.filter((d) => d.responseBody !== '').length;
      return t.info(withBody === 0 ? 'no decision set responseBody' : `${withBody} decisions set responseBody, which Proksi ignores`);
    },
  },
];

export const capnpSuite: Suite<CapnpSuiteContext> = { name: 'proksi-external-auth', checks };

/** A fixture: requests (partial client requests) that must pass, be blocked, or redirect. */
export function parseCapnpFixture(value: unknown, label: string): CapnpFixture {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${label}: the fixture must be a JSON object`);
  const root = value as Record<string, unknown>;
  const list = (key: keyof CapnpFixture): ClientRequest[] => {
    const items = root[key] ?? [];
    if (!Array.isArray(items)) throw new InputError(`${label}: "${key}" must be an array of requests`);
    return items.map((item, i) => {
      const where = `${label}: "${key}"[${i}]`;
      if (typeof item !== 'object' || item === null) throw new InputError(`${where} must be an object`);
      const r = item as Record<string, unknown>;
      for (const field of ['method', 'host', 'path', 'query', 'clientIp'] as const) {
        if (r[field] !== undefined && typeof r[field] !== 'string') throw new InputError(`${where}.${field} must be a string`);
      }
      for (const field of ['http2', 'noHostHeader'] as const) {
        if (r[field] !== undefined && typeof r[field] !== 'boolean') throw new InputError(`${where}.${field} must be true or false`);
      }
      const headers = r.headers ?? [];
      if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 && h.every((x) => typeof x === 'string'))) {
        throw new InputError(`${where}.headers must be a list of [name, value] pairs`);
      }
      return clientRequest({ ...(r as ClientRequestSpec), headers: headers as [string, string][] });
    });
  };
  return { pass: list('pass'), block: list('block'), redirect: list('redirect') };
}

export function capnpCapabilities(fixture: CapnpFixture | undefined): Set<string> {
  const has = new Set<string>();
  if (fixture?.pass.length) has.add('fixture.pass');
  if (fixture?.block.length) has.add('fixture.block');
  if (fixture?.redirect.length) has.add('fixture.redirect');
  return has;
}
