/**
 * What the ExtAuth and Hysteria 2 checks share: the target as the proxy is configured, the
 * fixture, and ways to send a proper event, a raw body, or run a revoke hook.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { GoTransport } from '../transport.js';
import { describeSocketError } from '../../shared/net-errors.js';
import { newConnectionId, sendEvent, type EventExchange } from '../client.js';
import type { ConnectionFacts, Dialect, EventType } from '../wire/dialect.js';
import type { FixtureHook, XrayFixture } from './fixture.js';
import { readReply, type Verdict } from '../contract.js';
import type { Check, CheckTools } from '../../conformance/check.js';
import { redactBody, redactDeep, redactText } from '../redact.js';

export interface XrayTarget {
  url: string;
  dialect: Dialect;
  secret?: string;
  headers: [string, string][];
  timeoutSeconds: number;
}

export interface XraySuiteContext {
  target: XrayTarget;
  fixture?: XrayFixture;
  transport: GoTransport;
  /** Parallel requests in the burst checks. */
  burst: number;
  /** Set while a check runs (see withCleanup): its abort signal, and the connections it opened. */
  check?: { signal: AbortSignal; open: Map<string, ConnectionFacts> };
  /** A prefix unique to this run, so address-counting checks never meet an earlier run's sessions. */
  runPrefix?: string;
}

export function facts(credential: string, extra: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    credential, connectionId: newConnectionId(), protocol: 'vless', inboundTag: 'vless-in',
    sourceIp: '198.51.100.10', sourcePort: randomInt(32768, 61000), localIp: '10.0.0.1', localPort: 443, tx: '0', ...extra,
  };
}

export interface SendOptions {
  /** Leave out the secret and custom headers (X06), or send these instead. */
  auth?: 'omit' | { secret?: string; headers: [string, string][] };
  extraHeaders?: [string, string][];
  now?: Date;
}

export function send(ctx: XraySuiteContext, type: EventType, eventFacts: ConnectionFacts, options: SendOptions = {}): Promise<EventExchange> {
  const auth = options.auth === 'omit' ? { secret: undefined, headers: [] } : (options.auth ?? { secret: ctx.target.secret, headers: ctx.target.headers });
  // Remember what this check opens on the backend, so it can be closed when the check ends.
  if (type === 'disconnect') ctx.check?.open.delete(eventFacts.connectionId);
  else if (ctx.target.dialect.events.includes('disconnect')) ctx.check?.open.set(eventFacts.connectionId, eventFacts);
  return sendEvent({
    ...ctx.target, ...auth, headers: [...auth.headers, ...(options.extraHeaders ?? [])], type, facts: eventFacts,
    transport: ctx.transport, now: options.now, signal: ctx.check?.signal,
  });
}

/**
 * Runs each check with its abort signal in the context and, whatever happens, disconnects the
 * connections it left open: a backend counts sessions, and a second run must find none.
 */
export function withCleanup(check: Check<XraySuiteContext>): Check<XraySuiteContext> {
  return {
    ...check,
    async run(ctx, t) {
      ctx.check = { signal: t.signal, open: new Map() };
      const { open } = ctx.check;
      try {
        return await check.run(ctx, redactingTools(t, targetSecrets(ctx)));
      } finally {
        ctx.check = undefined;
        await Promise.all([...open.values()].map((facts) => sendEvent({ ...ctx.target, type: 'disconnect', facts, transport: ctx.transport })));
      }
    },
  };
}

/** The secret and configured header values, never to appear in a report. */
function targetSecrets(ctx: XraySuiteContext): string[] {
  return [...(ctx.target.secret === undefined ? [] : [ctx.target.secret]), ...ctx.target.headers.map(([, value]) => value)];
}

/** The check's tools, with every message and piece of evidence passed through the redactor. */
function redactingTools(t: CheckTools, secrets: string[]): CheckTools {
  const clean = <T>(value: T): T => redactDeep(value, secrets) as T;
  return {
    signal: t.signal,
    evidence: (e) => t.evidence(clean(e)),
    pass: (message) => t.pass(message === undefined ? undefined : clean(message)),
    fail: (message, e) => t.fail(clean(message), e === undefined ? undefined : clean(e)),
    warn: (message, e) => t.warn(clean(message), e === undefined ? undefined : clean(e)),
    skip: (reason) => t.skip(clean(reason)),
    info: (message) => t.info(clean(message)),
  };
}

/** Addresses no earlier run used: `100.64.<run>.<i>`, from the shared address space of RFC 6598. */
export function runAddress(ctx: XraySuiteContext, i: number): string {
  ctx.runPrefix ??= `100.${64 + randomInt(0, 64)}.${randomInt(0, 256)}`;
  return `${ctx.runPrefix}.${i % 256}`;
}

export interface RawReply {
  status?: number;
  body: string;
  contentType?: string;
  error?: string;
}

/** How the proxy would read a raw reply to an authorization. */
export function rawVerdict(ctx: XraySuiteContext, reply: RawReply): Verdict | undefined {
  if (reply.status === undefined) return undefined;
  return readReply(ctx.target.dialect, 'authorization', { status: reply.status, body: reply.body, contentType: reply.contentType, truncated: false });
}

/** POSTs any body with the proxy's headers (and the secret), for the malformed-request checks. */
export async function postRaw(ctx: XraySuiteContext, body: string, contentType: string | null = 'application/json'): Promise<RawReply> {
  const exchange = await sendEvent({
    ...ctx.target, type: 'authorization', facts: facts(''), rawBody: body, contentType,
    timeoutSeconds: Math.max(1, ctx.target.timeoutSeconds || 5), transport: ctx.transport, signal: ctx.check?.signal,
  });
  if (!exchange.reply) return { body: '', error: exchange.verdict.reason };
  return { status: exchange.reply.status, body: exchange.reply.body, contentType: exchange.reply.headers['content-type'] };
}

/**
 * Runs a fixture hook: an HTTP call carrying the suite's secret and headers, or a command. A hook
 * that fails says which fixture field it is (`fixture.json: revoke.hook`), since the backend is
 * not what failed.
 */
export async function runHook(ctx: XraySuiteContext, hook: FixtureHook, credential: string): Promise<string> {
  try {
    return await callHook(ctx, hook, credential);
  } catch (error) {
    throw new Error(`the fixture's ${hook.source}: ${describeHookError(error)}`);
  }
}

function describeHookError(error: unknown): string {
  const e = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const socketError = [e, e.cause].find((x) => x?.code !== undefined && /^E[A-Z]+$/.test(x.code));
  if (socketError) return `cannot connect: ${describeSocketError(socketError)}`;
  return e.message;
}

async function callHook(ctx: XraySuiteContext, hook: FixtureHook, credential: string): Promise<string> {
  if ('command' in hook) {
    return new Promise((resolve, reject) => {
      // The credential goes through the environment, never spliced into the shell text.
      execFile('sh', ['-c', hook.command], { env: { ...process.env, AUTHKIT_CREDENTIAL: credential }, timeout: 10_000 }, (error, _stdout, stderr) => {
        if (error) reject(new Error(`command failed: ${String(stderr).trim().split('\n')[0] || error.message}`));
        else resolve('command ran');
      });
    });
  }
  const body = hook.body === undefined ? undefined : JSON.stringify(hook.body).split('{credential}').join(credential);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (ctx.target.secret !== undefined) headers.authorization = `Bearer ${ctx.target.secret}`;
  for (const [name, value] of [...ctx.target.headers, ...hook.headers]) headers[name.toLowerCase()] = value;
  const response = await request(hook.url.split('{credential}').join(encodeURIComponent(credential)), {
    method: hook.method as Dispatcher.HttpMethod, headers, body, signal: AbortSignal.timeout(10_000),
  });
  await response.body.dump();
  if (response.statusCode >= 300) throw new Error(`${hook.method} ${hook.url} answered ${response.statusCode}`);
  return `${hook.method} answered ${response.statusCode}`;
}

/** A random UUIDv4 no backend knows. */
export function unknownCredential(): string {
  return newConnectionId();
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** The part of an exchange a report shows: the request body, the status, the body, the verdict. */
export function shown(exchange: EventExchange, credential: string): { sent: unknown; received: unknown } {
  return {
    sent: redactBody(exchange.request.body, credential),
    received: exchange.reply ? { status: exchange.reply.status, body: redactText(exchange.reply.body.slice(0, 512), [credential]) } : exchange.verdict.reason,
  };
}
