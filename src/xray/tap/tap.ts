/**
 * `xray-tap`: between a proxy (Xray, Hysteria 2) and its auth backend. Bytes are relayed
 * untouched (tap/relay.ts); a copy of each direction is read as HTTP/1.1 (passive-http.ts), and
 * each request with its reply becomes one exchange with the proxy's verdict (verdict.ts).
 */
import { performance } from 'node:perf_hooks';
import { failedRequestVerdict, type Verdict } from '../contract.js';
import { describeNetworkError } from '../client.js';
import type { Dialect } from '../wire/dialect.js';
import { startRelay, type Relay, type UpstreamAt } from '../../tap/relay.js';
import type { ListenAt } from '../../shared/listen.js';
import { ByteCopy, readReply, readRequest, type SeenReply, type SeenRequest } from './passive-http.js';
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

export async function startXrayTap(options: XrayTapOptions): Promise<Relay> {
  const started = performance.now();
  const keep = options.keepBytes ?? DEFAULT_KEEP_BYTES;
  return startRelay({
    listen: options.listen,
    upstream: options.upstream,
    onUpstreamDown: (id, error) => options.onUpstreamDown?.(id, describeNetworkError(error)),
    watch: (id) => {
      options.onConnection?.(id);
      const fromClient = new ByteCopy();
      const fromUpstream = new ByteCopy();
      let clientEnded: () => void = () => undefined;
      const clientGone = new Promise<'gone'>((resolve) => (clientEnded = () => resolve('gone')));
      void watchConnection(id, fromClient, fromUpstream, clientGone, options, keep, started);
      return {
        onClientBytes: (chunk) => fromClient.push(chunk),
        onUpstreamBytes: (chunk) => fromUpstream.push(chunk),
        onClientEnd: () => {
          clientEnded();
          fromClient.end();
        },
        onUpstreamEnd: () => fromUpstream.end(),
        onClosed: () => {
          fromClient.end();
          fromUpstream.end();
        },
      };
    },
  });
}

/** Reads the connection's exchanges in order (HTTP/1.1 answers in order) until it ends. */
async function watchConnection(
  id: number, fromClient: ByteCopy, fromUpstream: ByteCopy, clientGone: Promise<'gone'>, options: XrayTapOptions, keep: number, started: number,
): Promise<void> {
  const { dialect } = options;
  for (;;) {
    let request: SeenRequest | undefined;
    try {
      request = await readRequest(fromClient.reader, keep);
    } catch (error) {
      options.log(`connection ${id}: the proxy's bytes are not HTTP/1.1 (${(error as Error).message}): relayed, not read`);
      return drain(fromClient, fromUpstream);
    }
    if (!request) return drain(fromClient, fromUpstream);
    const sentAt = performance.now();
    const at = new Date();
    const event = eventOf(dialect, request);
    const type = 'type' in event ? event.type : 'authorization';
    let reply: SeenReply | undefined;
    let verdict: Verdict;
    try {
      // Go's client never half-closes while it waits: a FIN from the proxy now is it giving up
      // (its timeout, a cancel), recorded when it happens; the relay goes on as before.
      const first = await Promise.race([readReply(fromUpstream.reader, request.method, keep), clientGone]);
      reply = first === 'gone' ? undefined : first;
      verdict = reply
        ? verdictOf(dialect, type, request, reply, options.kickOnDeny)
        : noReply(options, type, first === 'gone', performance.now() - sentAt);
    } catch (error) {
      verdict = failedRequestVerdict(dialect, type, 'network-error', describeNetworkError(error));
    }
    const latencyMs = Math.round((performance.now() - sentAt) * 100) / 100;
    if ('error' in event) verdict.warnings.push(event.error);
    options.onExchange({
      connection: id, at, offsetMs: Math.round((sentAt - started) * 100) / 100, request, event, reply, latencyMs, verdict,
      violations: violationsOf(dialect, type, reply?.head.status, verdict, latencyMs, options.timeoutSeconds),
    });
    if (!reply) return drain(fromClient, fromUpstream);
  }
}

/** No reply: the proxy gave up first (its timeout, or a cancel), or the backend closed. */
function noReply(options: XrayTapOptions, type: SeenEvent['type'], clientGaveUp: boolean, waitedMs: number): Verdict {
  if (!clientGaveUp) return failedRequestVerdict(options.dialect, type, 'network-error', 'the backend closed the connection before the reply was complete (unexpected EOF)');
  // Within 5 % of the proxy's timeout, the proxy's timer is what ended it.
  const timedOut = options.timeoutSeconds > 0 && waitedMs >= options.timeoutSeconds * 1000 * 0.95;
  return timedOut
    ? failedRequestVerdict(options.dialect, type, 'timeout', `no complete reply within ${options.timeoutSeconds} s: the proxy closed the connection`)
    : failedRequestVerdict(options.dialect, type, 'network-error', `the proxy closed the connection after ${Math.round(waitedMs)} ms, before the reply (it cancelled, or its client left)`);
}

/** Stops reading a connection: what is still relayed is no longer kept. */
function drain(...copies: ByteCopy[]): void {
  for (const copy of copies) copy.stop();
}
