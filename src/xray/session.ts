/**
 * Connections as Xray runs them against ExtAuth (docs/xray-extauth.md §2.6-2.7): a positive-only TTL cache
 * keyed on (credential, source IP) that skips authorization but not connect; connect sent
 * asynchronously; a heartbeat every N s on a ticker (ticks that fall due while a request runs
 * are dropped but one, as Go's buffered ticker channel does); a 401/403 on a heartbeat deleting
 * the cache entry and, with kick-on-deny, ending the connection; a heartbeat in flight cancelled
 * when the connection ends; disconnect once at the end. No retries. Hysteria has no cache.
 */
import { performance } from 'node:perf_hooks';
import { newConnectionId, sendEvent, type EventExchange } from './client.js';
import { GoTransport, type TlsTrust } from './transport.js';
import type { ConnectionFacts, Dialect, EventType } from './wire/dialect.js';

export interface SessionOptions {
  url: string;
  unixSocket?: string;
  tls?: TlsTrust;
  dialect: Dialect;
  secret?: string;
  headers?: readonly [string, string][];
  timeoutSeconds: number;
  kickOnDeny: boolean;
  /** Base facts; each connection gets its own id, and its source IP from `sourceIps`. */
  facts: Omit<ConnectionFacts, 'connectionId'>;
  sourceIps: string[];
  connections: number;
  /** Seconds between connection starts. */
  staggerSeconds: number;
  heartbeatSeconds: number;
  durationSeconds: number;
  ttlSeconds: number;
  onEvent?: (entry: TimelineEntry) => void;
}

export interface TimelineEntry {
  /** Milliseconds since the run started, when the event was sent. */
  atMs: number;
  connection: number;
  sourceIp: string;
  event: EventType | 'cache-hit' | 'kicked' | 'refused';
  exchange?: EventExchange;
  note?: string;
}

export interface SessionReport {
  timeline: TimelineEntry[];
  counts: Record<EventType | 'cache-hit' | 'kicked' | 'refused', number>;
  /** Connections that were admitted and never denied a heartbeat. */
  admitted: number;
  denied: number;
}

/** The positive-only cache: allowed users by (credential, source IP), until their expiry. */
class ExtAuthCache {
  private readonly entries = new Map<string, number>();
  constructor(private readonly ttlMs: number) {}
  private key(credential: string, ip: string): string {
    return `${credential}\u0000${ip}`;
  }
  hit(credential: string, ip: string): boolean {
    const expires = this.entries.get(this.key(credential, ip));
    return expires !== undefined && performance.now() < expires;
  }
  store(credential: string, ip: string): void {
    if (this.ttlMs > 0) this.entries.set(this.key(credential, ip), performance.now() + this.ttlMs);
  }
  remove(credential: string, ip: string): void {
    this.entries.delete(this.key(credential, ip));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function runSessions(options: SessionOptions): Promise<SessionReport> {
  const started = performance.now();
  const now = (): number => Math.round(performance.now() - started);
  const cache = new ExtAuthCache(options.ttlSeconds * 1000);
  const timeline: TimelineEntry[] = [];
  const record = (entry: TimelineEntry): void => {
    timeline.push(entry);
    options.onEvent?.(entry);
  };
  const transport = new GoTransport({ unixSocket: options.unixSocket, tls: options.tls });
  const outcomes: boolean[] = [];
  try {
    await Promise.all(
      Array.from({ length: options.connections }, async (_, i) => {
        await sleep(i * options.staggerSeconds * 1000);
        outcomes[i] = await runConnection(i + 1, options.sourceIps[i % options.sourceIps.length]!, options, cache, transport, now, record);
      }),
    );
  } finally {
    transport.close();
  }
  const counts = { authorization: 0, connect: 0, heartbeat: 0, disconnect: 0, 'cache-hit': 0, kicked: 0, refused: 0 };
  for (const entry of timeline) counts[entry.event]++;
  const admitted = outcomes.filter(Boolean).length;
  return { timeline: timeline.sort((a, b) => a.atMs - b.atMs), counts, admitted, denied: options.connections - admitted };
}

async function runConnection(
  connection: number,
  sourceIp: string,
  options: SessionOptions,
  cache: ExtAuthCache,
  transport: GoTransport,
  now: () => number,
  record: (entry: TimelineEntry) => void,
): Promise<boolean> {
  const facts: ConnectionFacts = { ...options.facts, sourceIp, connectionId: newConnectionId() };
  // The connection's context: a heartbeat still in flight when it ends is cancelled (docs/xray-extauth.md §2.5).
  const connectionContext = new AbortController();
  const send = async (type: EventType, signal?: AbortSignal): Promise<EventExchange> => {
    const atMs = now();
    const exchange = await sendEvent({ ...options, type, facts, transport, signal });
    record({ atMs, connection, sourceIp, event: type, exchange });
    return exchange;
  };
  const endAt = now() + options.durationSeconds * 1000;
  const caching = options.dialect.cache;

  if (caching && cache.hit(facts.credential, sourceIp)) {
    record({ atMs: now(), connection, sourceIp, event: 'cache-hit', note: 'no authorization request' });
  } else {
    const auth = await send('authorization');
    if (auth.verdict.class !== 'allow') {
      record({ atMs: now(), connection, sourceIp, event: 'refused', note: auth.verdict.reason });
      return false;
    }
    if (caching) cache.store(facts.credential, sourceIp);
  }
  if (!options.dialect.events.includes('connect')) return true;

  // Fire-and-forget, as the latest archived code does: it may land after the first heartbeat,
  // or after the disconnect of a short connection.
  const connect = send('connect');
  const ending = setTimeout(() => connectionContext.abort(), Math.max(0, endAt - now()));
  let admitted = true;
  if (options.heartbeatSeconds > 0) {
    const interval = options.heartbeatSeconds * 1000;
    const start = now();
    let tick = 1;
    while (start + tick * interval < endAt) {
      await sleep(start + tick * interval - now());
      const beat = await send('heartbeat', connectionContext.signal);
      if (connectionContext.signal.aborted) break;
      if (beat.verdict.verdict === 'deny') {
        admitted = false;
        cache.remove(facts.credential, sourceIp);
        if (options.kickOnDeny) {
          record({ atMs: now(), connection, sourceIp, event: 'kicked', note: 'heartbeat denied: connection ended' });
          break;
        }
      }
      // A Go ticker's channel holds one tick: if ticks fell due while the request ran, the last of
      // them fires at once and the others are dropped; otherwise the next one is on the grid.
      tick = Math.max(tick + 1, Math.floor((now() - start) / interval));
    }
  }
  if (admitted || !options.kickOnDeny) await sleep(endAt - now());
  clearTimeout(ending);
  await send('disconnect');
  await connect;
  return admitted;
}
