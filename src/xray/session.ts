/**
 * `xray-sim --session`: connections as Xray runs them against ExtAuth, sent for real. What the
 * proxy sends when is model.ts's (docs/xray-extauth.md §2.6-2.7); this file adds the clock and
 * the requests: connect sent asynchronously, a heartbeat in flight cancelled when the connection
 * ends (§2.5), and a timeline of everything sent.
 */
import { performance } from 'node:perf_hooks';
import { newConnectionId, sendEvent, type EventExchange } from './client.js';
import { GoTransport, type TlsTrust } from './transport.js';
import { XrayProxyModel, type ProxyNote } from './model.js';
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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function runSessions(options: SessionOptions): Promise<SessionReport> {
  const started = performance.now();
  const now = (): number => Math.round(performance.now() - started);
  const model = new XrayProxyModel({
    cache: options.dialect.cache, ttlMs: options.ttlSeconds * 1000, heartbeatMs: options.heartbeatSeconds * 1000,
    kickOnDeny: options.kickOnDeny, events: options.dialect.events,
  });
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
        outcomes[i] = await runConnection(i + 1, options.sourceIps[i % options.sourceIps.length]!, options, model, transport, now, record);
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

/** One connection, start to end; true if it was admitted and never denied a heartbeat. */
async function runConnection(
  number: number,
  sourceIp: string,
  options: SessionOptions,
  model: XrayProxyModel,
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
    record({ atMs, connection: number, sourceIp, event: type, exchange });
    return exchange;
  };
  const note = (event: ProxyNote, text: string): void => record({ atMs: now(), connection: number, sourceIp, event, note: text });

  const arrival = model.arrive(facts.credential, sourceIp, now(), now() + options.durationSeconds * 1000);
  const connection = arrival.connection;
  let admission = arrival.step;
  if (admission.note === 'cache-hit') {
    note('cache-hit', 'no authorization request');
  } else {
    const auth = await send('authorization');
    admission = connection.authorized(auth.verdict.class === 'allow', now());
    if (admission.note === 'refused') {
      note('refused', auth.verdict.reason);
      return false;
    }
  }
  // Nothing follows an authorization in a dialect without notifications (Hysteria 2, §6).
  if (!admission.send.includes('connect')) return true;

  // Fire-and-forget, as the latest archived code does: it may land after the first heartbeat,
  // or after the disconnect of a short connection.
  const connect = send('connect');
  const ending = setTimeout(() => connectionContext.abort(), Math.max(0, connection.endMs - now()));
  for (let at = connection.nextHeartbeatAt(now()); at !== undefined; at = connection.nextHeartbeatAt(now())) {
    await sleep(at - now());
    const beat = await send('heartbeat', connectionContext.signal);
    if (connectionContext.signal.aborted) break;
    if (connection.heartbeatFinished(beat.verdict.verdict === 'deny', now()).note === 'kicked') {
      note('kicked', 'heartbeat denied: connection ended');
      break;
    }
  }
  // A kick has moved the end to now.
  if (connection.endMs > now()) await sleep(connection.endMs - now());
  clearTimeout(ending);
  for (const type of connection.close().send) await send(type);
  await connect;
  return connection.admitted;
}
