/**
 * What the proxy decides about one exchange the tap saw: the event read from the request body
 * as a backend reads it, the verdict from the reply with xray-sim's own reading (contract.ts),
 * and the contract checks that one exchange can show.
 */
import { gunzipSync } from 'node:zlib';
import { failedRequestVerdict, readReply, type Verdict } from '../contract.js';
import { REDIRECT_STATUSES } from '../client.js';
import { BadEventError, parseEventBody, type ConnectionFacts, type Dialect, type EventType } from '../wire/dialect.js';
import { headerValue } from '../wire/go-reply.js';
import { goUtf8Text } from '../wire/go-json-stream.js';
import type { SeenReply, SeenRequest } from './passive-http.js';

export interface SeenEvent {
  type: EventType;
  facts: Partial<ConnectionFacts>;
}

/**
 * The event a request carries, or why it is not one of the dialect's. The proxy's bodies are
 * json.Marshal's, which JSON.parse reads the same: the type and the credential are taken that way
 * when they are plainly there, and anything else goes to the backend's strict reading.
 */
export function eventOf(dialect: Dialect, request: SeenRequest): SeenEvent | { error: string } {
  const quick = quickEvent(dialect, request.body);
  if (quick) return quick;
  try {
    const parsed = parseEventBody(dialect, goUtf8Text(request.body));
    return { type: parsed.type, facts: parsed.facts };
  } catch (error) {
    if (error instanceof BadEventError) return { error: `not a ${dialect.name} event: ${error.message}` };
    throw error;
  }
}

/**
 * The reply's verdict as the proxy reaches it. Go's transport asks for gzip itself when the
 * request names no Accept-Encoding, and then decodes it: a request the tap saw with exactly
 * `Accept-Encoding: gzip` is taken to be that.
 */
export function verdictOf(dialect: Dialect, type: EventType, request: SeenRequest, reply: SeenReply, kickOnDeny: boolean): Verdict {
  const { head } = reply;
  const location = headerValue(head, 'Location');
  if (REDIRECT_STATUSES.has(head.status) && location) {
    return {
      verdict: 'ignored', class: 'protocol-error', reason: `${head.status} redirect to ${location}: Go follows it, and the verdict comes from the final reply`,
      effect: 'the proxy sends its next request to the Location (the tap sees it only if that is the tap)', warnings: ['replies should not be redirects (X18)'],
    };
  }
  let body = reply.body;
  const asked = request.headers.filter(([name]) => name.toLowerCase() === 'accept-encoding').map(([, v]) => v);
  if (asked.length === 1 && asked[0] === 'gzip' && headerValue(head, 'Content-Encoding')?.toLowerCase() === 'gzip') {
    try {
      body = gunzipSync(body, { maxOutputLength: 64 << 20 });
    } catch (error) {
      return failedRequestVerdict(dialect, type, 'network-error', `a gzip body that does not decompress (${(error as Error).message}): the proxy denies`);
    }
  }
  return readReply(dialect, type, { status: head.status, contentType: headerValue(head, 'Content-Type'), body: goUtf8Text(body), truncated: reply.truncated }, kickOnDeny);
}

export interface Violation {
  /** The conformance check this is the single-exchange part of. */
  id: string;
  level: 'MUST' | 'SHOULD';
  message: string;
}

/**
 * The conformance suite's checks that one exchange can show, needing no fixture (the suite's
 * IDs): a 5xx or 429 on authorization (X16), a redirect or a 200 that is not JSON (X18), a
 * notification answered other than 2xx (X20; a heartbeat's 401/403 is a deny, not a fault), a
 * reply slower than the proxy's timeout (X15, H06) or than the suite's SHOULD bound, an allow
 * without a user email or id (X02, H01), a deny dressed as a 200 (X05).
 */
export function violationsOf(dialect: Dialect, type: EventType, status: number | undefined, verdict: Verdict, latencyMs: number, timeoutSeconds: number): Violation[] {
  const found: Violation[] = [];
  const hysteria = dialect.reply === 'hysteria-ok';
  const latencyId = hysteria ? 'H06' : 'X15';
  if (timeoutSeconds > 0 && latencyMs >= timeoutSeconds * 1000) found.push({ id: latencyId, level: 'MUST', message: `${latencyMs} ms is not under the proxy's ${timeoutSeconds} s timeout` });
  else if (type === 'authorization' && latencyMs >= (hysteria ? 500 : 200)) found.push({ id: latencyId, level: 'SHOULD', message: `${latencyMs} ms: every new connection waits for it` });
  if (status === undefined) return found;
  if (type === 'authorization') {
    if (status >= 500 || status === 429) found.push({ id: hysteria ? 'H12' : 'X16', level: 'SHOULD', message: `${status} on an authorization: the proxy denies, without retry` });
    if (status >= 300 && status < 400) found.push({ id: 'X18', level: 'SHOULD', message: `a ${status}: replies should not be redirects` });
    if (status === 200 && verdict.warnings.some((w) => w.includes('Content-Type'))) found.push({ id: 'X18', level: 'SHOULD', message: 'a 200 without Content-Type: application/json' });
    if (verdict.class === 'allow' && verdict.user && 'email' in verdict.user && verdict.user.email === '') found.push({ id: 'X02', level: 'SHOULD', message: 'an allow with an empty email' });
    if (verdict.class === 'allow' && verdict.user && 'id' in verdict.user && verdict.user.id === '') found.push({ id: 'H01', level: 'MUST', message: 'an allow with an empty id' });
    if (status === 200 && verdict.class === 'protocol-error' && !hysteria) found.push({ id: 'X05', level: 'SHOULD', message: `a deny as a 200 (${verdict.reason}): answer 401 or 403` });
  } else if (!(status >= 200 && status < 300) && !(type === 'heartbeat' && (status === 401 || status === 403))) {
    found.push({ id: 'X20', level: 'SHOULD', message: `${status} on a ${type}: it should answer 2xx` });
  }
  return found;
}

function quickEvent(dialect: Dialect, body: Buffer): SeenEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const object = value as Record<string, unknown>;
  const typeKey = dialect.body.find((f) => f.fact === 'type')?.key;
  const credentialKey = dialect.body.find((f) => f.fact === 'credential')?.key;
  const type = typeKey === undefined ? 'authorization' : object[typeKey];
  const credential = credentialKey === undefined ? undefined : object[credentialKey];
  if (typeof credential !== 'string' || typeof type !== 'string' || !dialect.events.includes(type as EventType)) return undefined;
  return { type: type as EventType, facts: { credential } };
}
