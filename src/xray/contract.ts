/**
 * How the proxy reads a backend's reply (docs/xray-extauth.md §2.4 for ExtAuth, §6 for Hysteria 2), as a
 * verdict: what it decides, why, and anything a strict reading would have judged differently.
 */
import type { Dialect, EventType } from './wire/dialect.js';
import { decodeFirstValue, goDecodeStruct, goKeyMatches, goKind, JsonSyntaxError, unmarshalWhole, type GoDecoding, type GoJson } from './wire/go-json.js';

export type VerdictClass = 'allow' | 'policy-deny' | 'upstream-error' | 'protocol-error' | 'timeout' | 'network-error';

export interface Verdict {
  /** `ignored`: a notification reply that changes nothing in the proxy. */
  verdict: 'allow' | 'deny' | 'ignored';
  class: VerdictClass;
  /** One line: why. */
  reason: string;
  /** What the proxy does next. */
  effect: string;
  user?: { email: string; level: number } | { id: string };
  warnings: string[];
}

export interface Reply {
  status: number;
  contentType?: string;
  body: string;
  /** The body was longer than the read limit and `body` is its beginning. */
  truncated: boolean;
}

function statusClass(status: number): VerdictClass {
  if (status === 401 || status === 403) return 'policy-deny';
  if (status >= 500) return 'upstream-error';
  return 'protocol-error';
}

export function readReply(dialect: Dialect, event: EventType, reply: Reply, kickOnDeny = dialect.kickOnDenyDefault): Verdict {
  if (event !== 'authorization') return readNotificationReply(event, reply, kickOnDeny);
  const warnings: string[] = [];
  if (reply.status !== 200) {
    const cls = statusClass(reply.status);
    const why =
      reply.status >= 300 && reply.status < 400
        ? `${reply.status}: a redirect Go does not follow (not 301/302/303/307/308, or no Location), so not 200: the proxy denies`
        : cls === 'policy-deny'
          ? `${reply.status}: an explicit deny`
          : cls === 'upstream-error'
            ? `${reply.status}: an upstream error, denied without retry`
            : `${reply.status} is not 200: only 200 with a user allows, so this denies silently`;
    return { verdict: 'deny', class: cls, reason: why, effect: denyEffect(dialect), warnings };
  }
  if (reply.contentType !== undefined && !/^application\/json\b/i.test(reply.contentType)) {
    warnings.push(`Content-Type is "${reply.contentType}", not application/json (the proxy does not check it)`);
  } else if (reply.contentType === undefined) {
    warnings.push('no Content-Type on a 200 (the proxy does not check it)');
  }
  const read = dialect.reply === 'extauth-user' ? readExtAuthUser(reply, warnings) : readHysteriaOk(reply, warnings);
  if ('deny' in read) return { verdict: 'deny', class: read.class, reason: read.deny, effect: denyEffect(dialect), warnings };
  return { verdict: 'allow', class: 'allow', reason: read.reason, effect: allowEffect(dialect), user: read.user, warnings };
}

type Read = { deny: string; class: VerdictClass } | { reason: string; user: Verdict['user'] & object };

function protocolError(reason: string): Read {
  return { deny: reason, class: 'protocol-error' };
}

/** json.NewDecoder(body).Decode(&Response{User *struct{Email string; Level uint32}}). */
function readExtAuthUser(reply: Reply, warnings: string[]): Read {
  let value: GoJson;
  try {
    const first = decodeFirstValue(reply.body);
    value = first.value;
    if (first.rest.trim() !== '') warnings.push(`${first.rest.length} bytes after the JSON object: Go's decoder reads only the first value and ignores them`);
  } catch (error) {
    if (error instanceof JsonSyntaxError && reply.truncated) return protocolError(`the first JSON value does not end within authkit's read cap (Go would read on)`);
    return protocolError(reply.body.trim() === '' ? 'empty body on a 200: the proxy denies' : `invalid JSON on a 200 (${describeSyntax(error)}): the proxy denies`);
  }
  if (value.kind === 'null') return protocolError('the body is null: no user, the proxy denies');
  if (value.kind !== 'object') return protocolError(`the body is a JSON ${goKind(value)}, not an object: cannot unmarshal, the proxy denies`);
  // A pointer field: null sets it to nil, an object fills the struct it points to (a second
  // "user" object adds to the first), anything else is a type error.
  const decoding: GoDecoding = { warnings };
  let user: { email: string; level: number } | null = null;
  let seen = false;
  for (const [key, item] of value.entries) {
    const match = goKeyMatches(key, 'user');
    if (!match) continue;
    seen = true;
    if (!match.exact) warnings.push(`key "${key}" accepted as "user" only because Go matches keys case-insensitively`);
    if (item.kind === 'null') user = null;
    else if (item.kind === 'object') goDecodeStruct(item, { email: 'string', level: 'uint32' }, (user ??= { email: '', level: 0 }), decoding, 'user.');
    else decoding.firstError ??= `"user" is a JSON ${goKind(item)}, not an object: cannot unmarshal`;
  }
  if (decoding.firstError) return protocolError(`${decoding.firstError}${/uint32/.test(decoding.firstError) ? ' (0..4294967295)' : ''}, the proxy denies`);
  if (!user) {
    warnings.push('a 200 without a user used as a deny is ambiguous: answer 401 or 403');
    return protocolError(`"user" is ${seen ? 'null' : 'missing'}: the proxy denies`);
  }
  if (user.email === '') warnings.push('empty email: Xray keeps no per-user traffic stats or online state for this user');
  return { reason: '200 with a user', user };
}

/** json.Unmarshal(whole body, &struct{OK bool; ID string}). */
function readHysteriaOk(reply: Reply, warnings: string[]): Read {
  let value: GoJson;
  try {
    value = unmarshalWhole(reply.body);
  } catch (error) {
    if (reply.truncated) return protocolError('the body is larger than authkit\'s read cap (Go would read on)');
    return protocolError(reply.body.trim() === '' ? 'empty body on a 200: Hysteria denies' : `not one JSON value (${describeSyntax(error)}): json.Unmarshal fails, Hysteria denies`);
  }
  if (value.kind === 'null') return protocolError('the body is null: ok is false, Hysteria denies');
  if (value.kind !== 'object') return protocolError(`the body is a JSON ${goKind(value)}, not an object: Hysteria denies`);
  const decoding: GoDecoding = { warnings };
  const result: { ok?: boolean; id?: string } = {};
  goDecodeStruct(value, { ok: 'bool', id: 'string' }, result, decoding);
  if (decoding.firstError) return protocolError(`${decoding.firstError}, Hysteria denies`);
  if (!result.ok) return { deny: '200 with "ok": false', class: 'policy-deny' };
  if (!result.id) warnings.push('empty id: Hysteria keys this client\'s traffic under ""');
  return { reason: '200 with "ok": true', user: { id: result.id ?? '' } };
}

/** JavaScript runs out of stack before Go's 10000-level limit; say so rather than quote V8. */
function describeSyntax(error: unknown): string {
  return error instanceof RangeError ? 'nested deeper than authkit follows' : (error as Error).message;
}

function readNotificationReply(event: EventType, reply: Reply, kickOnDeny: boolean): Verdict {
  const ok = reply.status >= 200 && reply.status < 300;
  if (event === 'heartbeat' && (reply.status === 401 || reply.status === 403)) {
    return {
      verdict: 'deny', class: 'policy-deny', reason: `${reply.status} on a heartbeat`, warnings: [],
      effect: kickOnDeny ? 'the cached (credential, IP) entry is deleted and the connection is ended' : 'the cached (credential, IP) entry is deleted; the connection stays up and heartbeats continue',
    };
  }
  if (ok) return { verdict: 'allow', class: 'allow', reason: `${reply.status} on a ${event}`, effect: 'the connection goes on; the body is ignored', warnings: [] };
  return {
    verdict: 'ignored', class: statusClass(reply.status), reason: `${reply.status} on a ${event}`,
    effect: event === 'heartbeat' ? 'Xray acts only on 401/403 from a heartbeat: nothing changes' : `Xray ignores every ${event} reply: nothing changes`, warnings: [],
  };
}

/** A request that got no reply: a deny for an authorization, nothing for a notification. */
export function failedRequestVerdict(dialect: Dialect, event: EventType, cls: 'timeout' | 'network-error', reason: string): Verdict {
  if (event !== 'authorization') return { verdict: 'ignored', class: cls, reason, effect: `Xray ignores a failed ${event}: nothing changes`, warnings: [] };
  return { verdict: 'deny', class: cls, reason, effect: denyEffect(dialect), warnings: [] };
}

function denyEffect(dialect: Dialect): string {
  return dialect.reply === 'hysteria-ok' ? 'the client connection is refused' : 'the VLESS handshake fails (or goes to the fallback); nothing is cached';
}

function allowEffect(dialect: Dialect): string {
  return dialect.reply === 'hysteria-ok' ? 'the client connects; id keys its traffic stats' : 'the connection proceeds; with ttl > 0 the user is cached for (credential, source IP)';
}
