/**
 * Xray as a load target: the events a node sends, as pre-built request bytes on the load
 * engine's HTTP/1.1 client, each reply read the way Xray reads it (contract.ts) and reported
 * by verdict class. One event type from a ring of connections, or the event mix of
 * load-mix.ts, whose operations carry their own event and connection.
 */
import { randomInt } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { buildEventBody, type ConnectionFacts, type Dialect, type EventType } from './wire/dialect.js';
import { eventRequest, HARD_READ_CAP, newConnectionId, REDIRECT_STATUSES, sendEvent } from './client.js';
import { readReply, type VerdictClass } from './contract.js';
import { countUpAddresses } from '../shared/ip.js';
import { Http1Pool, type Http1Outcome, type Http1Reply } from '../load/http1.js';
import type { LoadTarget } from '../load/target.js';
import { GoTransport, type TlsTrust } from './transport.js';
import { goRequestBytes } from './wire/go-request.js';
import { goUtf8Text } from './wire/go-json-stream.js';
import { parseGoUrl, type GoUrl } from './wire/go-url.js';

export interface XrayLoadSettings {
  /** The URL as given: Go keeps its authority and path as written. */
  url: string;
  unixSocket?: string;
  tls?: TlsTrust;
  dialect: Dialect;
  secret?: string;
  headers: [string, string][];
  timeoutSeconds: number;
  kickOnDeny: boolean;
  /** The connection facts every generated connection starts from (credential, addresses). */
  base: ConnectionFacts;
  /** Credentials to spread the load over (the --users file), else the base credential. */
  credentials: string[];
  ipsPerUser: number;
  maxConnections: number;
  pipelining: number;
}

/** An event of one connection (the mix), or undefined: the next request of the prebuilt ring. */
export type XrayOp = { type: EventType; facts: ConnectionFacts; session?: object } | undefined;

export const XRAY_FAILURES: ReadonlySet<string> = new Set<VerdictClass>(['upstream-error', 'protocol-error', 'timeout', 'network-error']);
export const XRAY_CLASSES: readonly VerdictClass[] = ['allow', 'policy-deny', 'upstream-error', 'protocol-error', 'timeout', 'network-error'];

const RING_SIZE = 256;
/** Bodies carry a timestamp: the ring is rebuilt this often so it stays current. */
const RING_REFRESH_MS = 1000;

export class XrayLoadTarget implements LoadTarget<XrayOp> {
  readonly failures = XRAY_FAILURES;
  readonly classes = XRAY_CLASSES;
  private readonly pool: Http1Pool;
  private ring: Buffer[] = [];
  private ringAt = 0;
  private ringBuiltMs = 0;
  private readonly verdicts = new Map<string, VerdictClass>();
  /** Request heads by body length (requestBytes). */
  private readonly heads = new Map<number, Buffer>();
  private lastReply: (Omit<Http1Reply, 'location'> & { type: EventType; verdict: VerdictClass }) | undefined;
  private readonly addresses: string[];
  private readonly goUrl: GoUrl;
  /** Redirects are rare and slow anyway: they are followed by the one-shot client, as Go follows them. */
  private redirectTransport: GoTransport | undefined;

  constructor(private readonly settings: XrayLoadSettings, private readonly event: EventType = 'authorization') {
    this.addresses = countUpAddresses(settings.base.sourceIp, settings.ipsPerUser);
    this.goUrl = parseGoUrl(settings.url);
    this.pool = new Http1Pool({
      url: new URL(settings.url), unixSocket: settings.unixSocket, tls: settings.tls, maxConnections: settings.maxConnections,
      pipelining: settings.pipelining, timeoutMs: settings.timeoutSeconds * 1000, maxReplyBytes: HARD_READ_CAP,
    });
  }

  async open(): Promise<void> {
    await this.pool.open();
  }

  async close(): Promise<void> {
    await this.pool.close();
    this.redirectTransport?.close();
  }

  /** The connection facts of generated connection `index`: credential and source IP spread. */
  factsFor(index: number): ConnectionFacts {
    const { base, credentials, ipsPerUser } = this.settings;
    const credential = credentials[index % credentials.length]!;
    const ipIndex = Math.floor(index / credentials.length) % ipsPerUser;
    return {
      ...base, credential, connectionId: newConnectionId(), sourcePort: randomInt(32768, 61000),
      sourceIp: this.addresses[ipIndex]!,
    };
  }

  requestBytes(type: EventType, facts: ConnectionFacts): Buffer {
    const text = buildEventBody(this.settings.dialect, type, facts);
    const body = Buffer.from(text, 'utf8');
    // The head differs between bodies only in Content-Length: Go's writer runs once per body length.
    let head = this.heads.get(body.length);
    if (!head) {
      const whole = goRequestBytes(eventRequest(this.goUrl, this.settings, text));
      head = whole.subarray(0, whole.length - body.length);
      if (this.heads.size < 1000) this.heads.set(body.length, head);
    }
    return Buffer.concat([head, body]);
  }

  send(op: XrayOp, done: (outcome: string, kind?: string) => void): void {
    const type = op?.type ?? this.event;
    const request = op ? this.requestBytes(op.type, op.facts) : this.nextFromRing();
    // As sendEvent: connect and disconnect get 5 s when the proxy sets no timeout.
    const seconds = this.settings.timeoutSeconds > 0 ? this.settings.timeoutSeconds : type === 'connect' || type === 'disconnect' ? 5 : 0;
    this.pool.send(request, (outcome) => {
      if ('reply' in outcome && outcome.reply.location !== undefined && REDIRECT_STATUSES.has(outcome.reply.status)) {
        this.followRedirect(type, op?.facts ?? this.settings.base, { status: outcome.reply.status, location: outcome.reply.location })
          .then((cls) => done(cls, op ? type : undefined));
        return;
      }
      done(this.classify(type, outcome), op ? type : undefined);
    }, seconds * 1000);
  }

  /** Goes on from a redirect the way Go's client would, and returns the final verdict's class. */
  private async followRedirect(type: EventType, facts: ConnectionFacts, redirectedBy: { status: number; location: string }): Promise<VerdictClass> {
    this.redirectTransport ??= new GoTransport({ unixSocket: this.settings.unixSocket, tls: this.settings.tls });
    const exchange = await sendEvent({ ...this.settings, type, facts, transport: this.redirectTransport, redirectedBy });
    return exchange.verdict.class;
  }

  private nextFromRing(): Buffer {
    const now = Date.now();
    if (now - this.ringBuiltMs > RING_REFRESH_MS) {
      this.ring = Array.from({ length: RING_SIZE }, (_, i) => this.requestBytes(this.event, this.factsFor(i)));
      this.ringBuiltMs = now;
    }
    this.ringAt = (this.ringAt + 1) % RING_SIZE;
    return this.ring[this.ringAt]!;
  }

  /**
   * The verdict class, memoised on the reply's bytes: a backend's replies repeat. The last reply is
   * checked first by comparing bytes (no string made); others by a key in a bounded map.
   */
  classify(type: EventType, outcome: Http1Outcome): VerdictClass {
    if ('failure' in outcome) return outcome.failure;
    const reply = outcome.reply;
    const last = this.lastReply;
    if (last && last.type === type && last.status === reply.status && last.contentType === reply.contentType &&
      last.contentEncoding === reply.contentEncoding && last.body.equals(reply.body)) return last.verdict;
    const key = `${type}\0${reply.status}\0${reply.contentType ?? ''}\0${reply.contentEncoding ?? ''}\0${reply.body.toString('latin1')}`;
    let verdict = this.verdicts.get(key);
    if (verdict === undefined) {
      verdict = this.readVerdict(type, reply);
      if (this.verdicts.size < 10_000) this.verdicts.set(key, verdict);
    }
    // The body is a view of the client's read buffer: the one kept is a copy.
    this.lastReply = { type, status: reply.status, contentType: reply.contentType, contentEncoding: reply.contentEncoding, body: Buffer.from(reply.body), verdict };
    return verdict;
  }

  private readVerdict(type: EventType, reply: Http1Reply): VerdictClass {
    let body = reply.body;
    if (reply.contentEncoding?.toLowerCase() === 'gzip' && body.length > 0) {
      try {
        body = gunzipSync(body, { maxOutputLength: HARD_READ_CAP });
      } catch {
        return 'network-error';
      }
    }
    const { dialect, kickOnDeny } = this.settings;
    return readReply(dialect, type, { status: reply.status, contentType: reply.contentType, body: goUtf8Text(body), truncated: false }, kickOnDeny).class;
  }
}
