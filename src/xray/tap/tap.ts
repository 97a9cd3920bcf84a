/**
 * `xray-tap`: between a proxy (Xray, Hysteria 2) and its auth backend. Bytes are relayed
 * untouched (tap/relay.ts); a copy of each direction is read as HTTP/1.1 (passive-http.ts), and
 * each request with its reply becomes one exchange with the proxy's verdict (verdict.ts).
 */
import { performance } from 'node:perf_hooks';
import { failedRequestVerdict, type Verdict } from '../contract.js';
import { describeNetworkError } from '../client.js';
import type { Dialect } from '../wire/dialect.js';
import { startRelay, type Relay, type RelayedConnection, type UpstreamAt } from '../../tap/relay.js';
import type { ListenAt } from '../../shared/listen.js';
import { partialRequest, replyReader, requestReader, type SeenReply, type SeenRequest } from './passive-http.js';
import { GoProtocolError } from '../wire/go-reply.js';
import { eventOf, verdictOf, violationsOf, type SeenEvent, type Violation } from './verdict.js';

export interface XrayTapOptions {
  listen: ListenAt;
  upstream: UpstreamAt;
  dialect: Dialect;
  kickOnDeny: boolean;
  /** The proxy's timeout, for the verdict on a reply that never came, and for X15. */
  timeoutSeconds: number;
  /** Bytes of each body kept for the verdict and the record (default 1 MiB). */
  keepBytes?: number;
  /** Requests one connection may have waiting for their replies; past it the connection is no longer read. */
  maxPending?: number;
  onExchange: (exchange: TappedExchange) => void;
  /** A connection the tap could not read: one line. */
  log: (line: string) => void;
  /** Each connection relayed. */
  onConnection?: (id: number) => void;
  /** A client whose upstream could not be reached: its connection was reset. */
  onUpstreamDown?: (id: number, reason: string) => void;
}

export interface TappedExchange {
  connection: number;
  /** When the request was complete, wall clock and ms since the tap started. */
  at: Date;
  offsetMs: number;
  request: SeenRequest;
  event: SeenEvent | { error: string };
  reply?: SeenReply;
  latencyMs: number;
  verdict: Verdict;
  violations: Violation[];
}

export const DEFAULT_KEEP_BYTES = 1 << 20;
/** Go's client sends one request at a time on a connection: more than this waiting is no proxy. */
export const DEFAULT_XRAY_TAP_MAX_PENDING = 64;

export async function startXrayTap(options: XrayTapOptions): Promise<Relay> {
  const started = performance.now();
  const keep = options.keepBytes ?? DEFAULT_KEEP_BYTES;
  return startRelay({
    listen: options.listen,
    upstream: options.upstream,
    onUpstreamDown: (id, error) => options.onUpstreamDown?.(id, describeNetworkError(error)),
    watch: (id) => {
      options.onConnection?.(id);
      return watchConnection(id, options, keep, started);
    },
  });
}

interface Asked {
  request: SeenRequest;
  event: SeenEvent | { error: string };
  at: Date;
  sentAt: number;
}

/**
 * Reads a connection's exchanges as its bytes pass: requests queue up, and each reply answers
 * the oldest (HTTP/1.1 answers in order). Bytes that stop making sense end the reading, not the
 * relay.
 */
function watchConnection(id: number, options: XrayTapOptions, keep: number, started: number): RelayedConnection {
  const { dialect } = options;
  const asked: Asked[] = [];
  let reading = true;
  const emit = (question: Asked, reply: SeenReply | undefined, verdict: Verdict): void => {
    const type = 'type' in question.event ? question.event.type : 'authorization';
    const latencyMs = Math.round((performance.now() - question.sentAt) * 100) / 100;
    if ('error' in question.event) verdict.warnings.push(question.event.error);
    options.onExchange({
      connection: id, at: question.at, offsetMs: Math.round((question.sentAt - started) * 100) / 100, request: question.request, event: question.event, reply, latencyMs, verdict,
      violations: violationsOf(dialect, type, reply?.head.status, verdict, latencyMs, options.timeoutSeconds),
    });
  };
  /** The oldest question ends without a reply; reading stops. */
  const unanswered = (why: (type: SeenEvent['type'], waitedMs: number) => Verdict): void => {
    reading = false;
    const question = asked.shift();
    if (question) emit(question, undefined, why('type' in question.event ? question.event.type : 'authorization', performance.now() - question.sentAt));
    asked.length = 0;
  };
  const stop = (who: string, error: unknown): void => {
    if (!reading) return;
    unanswered((type) => failedRequestVerdict(dialect, type, 'network-error', describeNetworkError(error)));
    // The reason without the bytes it quotes (a request line or header may carry a token).
    const reason = (error as Error).message.replace(/[:"].*$/s, '').trim();
    options.log(`connection ${id}: ${who}'s bytes are not HTTP/1.1 as Go reads it (${reason}): relayed, no longer read`);
  };
  /** A reply came while its request's body was still coming (a backend that refuses it unread). */
  let answeredEarly = false;
  const maxPending = options.maxPending ?? DEFAULT_XRAY_TAP_MAX_PENDING;
  const requests = requestReader(keep, (request) => {
    if (!reading) return;
    if (answeredEarly) {
      answeredEarly = false;
      return;
    }
    if (asked.length >= maxPending) {
      // Each waiting request holds its head and up to --keep-bytes of body: the bound on what one connection holds.
      reading = false;
      options.log(`connection ${id}: more than ${maxPending} requests waiting for their replies (--max-pending): relayed, no longer read; ${asked.length} waiting not reported`);
      asked.length = 0;
      return;
    }
    asked.push({ request, event: eventOf(dialect, request), at: new Date(), sentAt: performance.now() });
  });
  /** The oldest question, or the request still coming in that the backend answered first. */
  const nextQuestion = (): Asked | undefined => {
    const question = asked.shift();
    if (question) return question;
    const request = partialRequest(requests);
    if (!request) return undefined;
    answeredEarly = true;
    return { request, event: eventOf(dialect, request), at: new Date(), sentAt: performance.now() };
  };
  const replies = replyReader(keep, () => asked[0]?.request.method ?? requests.partial?.firstLine.split(' ')[0] ?? 'POST', (reply) => {
    if (!reading) return;
    const question = nextQuestion();
    if (!question) throw new GoProtocolError('a reply to no request');
    emit(question, reply, verdictOf(dialect, 'type' in question.event ? question.event.type : 'authorization', question.request, reply, options.kickOnDeny));
  });
  /** A chunk into one direction's reader; bytes it cannot read stop the reading, not the relay. */
  const feed = (reader: typeof requests, who: string) => (chunk: Buffer): void => {
    if (!reading) return;
    try {
      reader.push(chunk);
    } catch (error) {
      stop(who, error);
    }
  };
  return {
    onClientBytes: feed(requests, 'the proxy'),
    onUpstreamBytes: feed(replies, 'the backend'),
    // Go's client never half-closes while it waits: a FIN from the proxy then is it giving up
    // (its timeout, a cancel), recorded when it happens; the relay goes on as before.
    onClientEnd: () => {
      if (reading && asked.length > 0) unanswered((type, waitedMs) => gaveUp(options, type, waitedMs));
      reading = false;
    },
    onUpstreamEnd: (reset) => {
      if (!reading) return;
      // Only a clean end completes a body read until close: after a reset Go's read fails.
      if (!reset) {
        try {
          replies.end();
        } catch (error) {
          stop('the backend', error);
        }
      }
      const why = reset ? 'connection reset by the backend' : 'the backend closed the connection before the reply was complete (unexpected EOF)';
      if (asked.length > 0) unanswered((type) => failedRequestVerdict(dialect, type, 'network-error', why));
      reading = false;
    },
    onClosed: () => {
      reading = false;
    },
    // The tap stopping is neither side giving up: what is in flight is not reported.
    onStop: () => {
      if (reading && asked.length > 0) options.log(`connection ${id}: ${asked.length} exchange(s) in flight when the tap stopped: not reported`);
      reading = false;
      asked.length = 0;
    },
  };
}

/** The proxy closed while it waited: its timer, within 5 % of its timeout, or a cancel. */
function gaveUp(options: XrayTapOptions, type: SeenEvent['type'], waitedMs: number): Verdict {
  const timedOut = options.timeoutSeconds > 0 && waitedMs >= options.timeoutSeconds * 1000 * 0.95;
  return timedOut
    ? failedRequestVerdict(options.dialect, type, 'timeout', `no complete reply within ${options.timeoutSeconds} s: the proxy closed the connection`)
    : failedRequestVerdict(options.dialect, type, 'network-error', `the proxy closed the connection after ${Math.round(waitedMs)} ms, before the reply (it cancelled, or its client left)`);
}
