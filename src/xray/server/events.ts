/**
 * The event route of `xray-backend`: a POSTed event of the chosen dialect (docs/xray-extauth.md
 * §2.3, §6) is read, decided on from the backend state, and answered as the dialect's proxy
 * expects (§2.4): after any injected latency, or with an injected fault instead.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUuid } from '../wire/credential.js';
import { BadEventError, parseEventBody, type Dialect, type EventType } from '../wire/dialect.js';
import { maskCredential } from '../redact.js';
import { denyStatus, type BackendState, type Decision, type EventFacts } from './state.js';
import type { XrayUser } from './users.js';
import type { FaultInjector } from './faults.js';
import type { RequestGuard } from './guard.js';
import { readBody, send, sendTooLarge, type RequestLog } from './http-io.js';
import { RequestStats } from './stats.js';

export class EventRoute {
  /** Hysteria 2 sends no secret and no headers (H13): they guard only /admin/ there. */
  private readonly guarded: boolean;

  constructor(
    private readonly dialect: Dialect,
    private readonly state: BackendState,
    private readonly guard: RequestGuard,
    private readonly faults: FaultInjector,
    private readonly stats: RequestStats,
    private readonly bodyLimit: number,
  ) {
    this.guarded = dialect.secret !== 'none' || dialect.customHeaders;
  }

  async handle(req: IncomingMessage, res: ServerResponse, entry: RequestLog): Promise<void> {
    if (req.method !== 'POST') return this.reply(res, 405, { error: 'events are POSTed' }, { allow: 'POST' });
    if (this.guarded && !this.guard.admits(req)) {
      entry.note = 'missing or wrong secret';
      return this.reply(res, 401, { error: 'missing or wrong secret or header' });
    }
    const body = await readBody(req, this.bodyLimit);
    if (body === 'aborted') return;
    if (body === 'too-large') {
      entry.note = `body over ${this.bodyLimit} bytes`;
      await this.faults.delayReply();
      return sendTooLarge(res, this.bodyLimit);
    }
    let event;
    try {
      event = parseEventBody(this.dialect, body.toString('utf8'));
    } catch (error) {
      if (!(error instanceof BadEventError)) throw error;
      entry.note = error.message;
      return this.reply(res, 400, { error: error.message });
    }
    entry.type = event.type;
    entry.credential = logCredential(event.facts.credential!);
    const fault = this.faults.roll();
    if (fault === 'error') {
      entry.note = 'injected error';
      return this.reply(res, 503, { error: 'injected fault (error rate)' });
    }
    if (fault === 'garbage') {
      entry.note = 'injected garbage';
      return this.reply(res, 200, this.dialect.reply === 'hysteria-ok' ? '{"ok":tru' : '{"user":{"email":"');
    }
    const facts: EventFacts = { credential: event.facts.credential!, connectionId: event.facts.connectionId, sourceIp: event.facts.sourceIp };
    const [status, answer] = this.decide(event.type, facts);
    return this.reply(res, status, answer);
  }

  /** Every event reply waits the injected latency first. */
  private async reply(res: ServerResponse, status: number, body?: unknown, extra: Record<string, string> = {}): Promise<void> {
    await this.faults.delayReply();
    send(res, status, body, extra);
  }

  /** The status and body for an event, and the state change it makes (the table in state.ts). */
  private decide(type: EventType, facts: EventFacts): [number, unknown] {
    let decision: Decision;
    switch (type) {
      case 'connect':
        this.state.connect(facts);
        return [204, undefined];
      case 'disconnect':
        this.state.disconnect(facts);
        return [204, undefined];
      case 'heartbeat':
        decision = this.state.heartbeat(facts);
        break;
      default:
        decision = this.state.authorize(facts);
    }
    RequestStats.bump(this.stats.decisions, decision.allow ? 'allow' : decision.reason);
    if (this.dialect.reply === 'hysteria-ok') return [200, decision.allow ? { ok: true, id: displayName(decision.user) } : { ok: false }];
    if (!decision.allow) return [denyStatus(type, decision.reason), { error: decision.reason }];
    return [200, type === 'authorization' ? { user: { email: displayName(decision.user), level: decision.user.level } } : {}];
  }
}

/** The reply's name for a user: the email, or the credential when the file gives none (never empty, X02). */
function displayName(user: XrayUser): string {
  return user.email ?? user.credential;
}

/** `550e8400…` for a UUID; a Hysteria auth string shows only its length. */
export function logCredential(credential: string): string {
  return isUuid(credential) ? `${credential.slice(0, 8)}…` : maskCredential(credential);
}
