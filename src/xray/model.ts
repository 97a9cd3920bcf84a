/**
 * What an Xray node does with its ExtAuth backend, as a pure state machine: no sockets, no timers.
 * Inputs are what happens to a connection (it arrives, a reply comes back, its time is up), each
 * with the time it happened; outputs are the requests the proxy sends then and what became of the
 * connection. `xray-sim --session` drives it with real requests (session.ts), the load event mix
 * with simulated time (load-mix.ts), so both send the same traffic for the same replies.
 *
 * The rules (docs/xray-extauth.md §2.6-2.7): a positive-only cache keyed on (credential, source
 * IP) whose hit skips authorization but not connect; connect once admitted; heartbeats on a Go
 * ticker from then on; a 401/403 to a heartbeat deletes the cache entry and, with kick-on-deny,
 * ends the connection; one disconnect at the end. No retries. Hysteria 2 (§6) has no cache and
 * sends nothing after the authorization.
 */
import type { EventType } from './wire/dialect.js';

export interface ProxyModelSettings {
  /** The dialect keeps a positive cache (ExtAuth does; Hysteria 2 does not). */
  cache: boolean;
  /** How long an allow stays cached; 0, Xray's default, caches nothing. */
  ttlMs: number;
  /** The heartbeat ticker's period; 0: no heartbeats. */
  heartbeatMs: number;
  kickOnDeny: boolean;
  /** The events the dialect sends. */
  events: readonly EventType[];
}

/** `cache-hit`: admitted without asking; `refused`: the authorization did not allow; `kicked`: a heartbeat was denied with kick-on-deny. */
export type ProxyNote = 'cache-hit' | 'refused' | 'kicked';

/** The proxy's answer to one input. */
export interface ProxyStep {
  /** Requests the proxy sends now, in this order. */
  send: EventType[];
  note?: ProxyNote;
}

/** `authorizing`: waiting for the authorization's reply; `open`: admitted; `refused` and `closed` are final. */
export type ConnectionPhase = 'authorizing' | 'open' | 'refused' | 'closed';

/**
 * The positive-only TTL cache (§2.6): allows by (credential, source IP) until they expire. Only a
 * denied heartbeat removes an entry early; no single-flight, so concurrent misses all ask.
 */
export class AuthCache {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly ttlMs: number) {}

  hit(credential: string, ip: string, nowMs: number): boolean {
    const expires = this.expiries.get(cacheKey(credential, ip));
    return expires !== undefined && nowMs < expires;
  }

  store(credential: string, ip: string, nowMs: number): void {
    if (this.ttlMs > 0) this.expiries.set(cacheKey(credential, ip), nowMs + this.ttlMs);
  }

  remove(credential: string, ip: string): void {
    this.expiries.delete(cacheKey(credential, ip));
  }
}

function cacheKey(credential: string, ip: string): string {
  return `${credential}\u0000${ip}`;
}

/**
 * Go's time.Ticker under a loop that sends one heartbeat per tick and waits for its reply (§2.7).
 * Ticks stay on the grid origin + k·period. The ticker's channel holds one tick, so if ticks fell
 * due while a request ran, one of them fires as soon as the reply is in and the rest are dropped.
 */
export class HeartbeatTicker {
  /** The grid index of the tick the loop waits for next. */
  private tick = 1;

  constructor(
    private readonly originMs: number,
    private readonly periodMs: number,
  ) {}

  /** When the loop sends its next heartbeat: the pending tick's time, or now if it is already due. */
  nextAt(nowMs: number): number {
    return Math.max(this.originMs + this.tick * this.periodMs, nowMs);
  }

  /** The pending tick's heartbeat has finished (answered, failed or never sent) at `nowMs`. */
  finished(nowMs: number): void {
    this.tick = Math.max(this.tick + 1, Math.floor((nowMs - this.originMs) / this.periodMs));
  }
}

/** One client connection through the proxy, from arrival to its disconnect. */
export class ProxyConnection {
  private currentPhase: ConnectionPhase;
  private ticker: HeartbeatTicker | undefined;
  private heartbeatDenied = false;

  /** `endMs`: when the client leaves, unless a kick ends the connection sooner. */
  constructor(
    private readonly model: XrayProxyModel,
    readonly credential: string,
    readonly ip: string,
    public endMs: number,
    phase: 'authorizing' | 'open',
  ) {
    this.currentPhase = phase;
  }

  get phase(): ConnectionPhase {
    return this.currentPhase;
  }

  /** Let in, and never denied a heartbeat since. */
  get admitted(): boolean {
    return (this.currentPhase === 'open' || this.currentPhase === 'closed') && !this.heartbeatDenied;
  }

  /**
   * Let in at `nowMs` (an allowed authorization, a cache hit, or a connection already open when
   * watching began): connect goes out, and the ticker starts. `tickerOriginMs` places the ticker's
   * grid for a connection that has been open a while.
   */
  admit(nowMs: number, tickerOriginMs = nowMs): EventType[] {
    const { heartbeatMs, events } = this.model.settings;
    this.currentPhase = 'open';
    this.endMs = Math.max(this.endMs, nowMs);
    if (heartbeatMs > 0 && events.includes('heartbeat')) this.ticker = new HeartbeatTicker(tickerOriginMs, heartbeatMs);
    return events.includes('connect') ? ['connect'] : [];
  }

  /** The authorization's reply: only an allow lets the connection in, and fills the cache. */
  authorized(allowed: boolean, nowMs: number): ProxyStep {
    if (this.currentPhase !== 'authorizing') return { send: [] };
    if (!allowed) {
      this.currentPhase = 'refused';
      return { send: [], note: 'refused' };
    }
    if (this.model.settings.cache) this.model.cache.store(this.credential, this.ip, nowMs);
    return { send: this.admit(nowMs) };
  }

  /** When the next heartbeat goes out, if one does before the connection ends. */
  nextHeartbeatAt(nowMs: number): number | undefined {
    if (this.currentPhase !== 'open' || !this.ticker) return undefined;
    const at = this.ticker.nextAt(nowMs);
    return at < this.endMs ? at : undefined;
  }

  /**
   * A heartbeat finished: `denied` is a 401/403 (any other reply, or none, changes nothing).
   * A reply after the connection closed is ignored: the heartbeat was cancelled with it (§2.5).
   */
  heartbeatFinished(denied: boolean, nowMs: number): ProxyStep {
    if (this.currentPhase !== 'open') return { send: [] };
    this.ticker?.finished(nowMs);
    if (!denied) return { send: [] };
    this.heartbeatDenied = true;
    this.model.cache.remove(this.credential, this.ip);
    if (!this.model.settings.kickOnDeny) return { send: [] };
    // Kicked: the connection ends now; its disconnect follows from close().
    this.endMs = nowMs;
    return { send: [], note: 'kicked' };
  }

  /** The connection ends: one disconnect, if it was ever let in. */
  close(): ProxyStep {
    if (this.currentPhase !== 'open') return { send: [] };
    this.currentPhase = 'closed';
    return { send: this.model.settings.events.includes('disconnect') ? ['disconnect'] : [] };
  }
}

/** One node: the cache its connections share, and the rules they follow. */
export class XrayProxyModel {
  readonly cache: AuthCache;

  constructor(readonly settings: ProxyModelSettings) {
    this.cache = new AuthCache(settings.ttlMs);
  }

  /** A client connects at `nowMs`, to stay until `endMs`: a cache hit goes straight to connect, a miss asks. */
  arrive(credential: string, ip: string, nowMs: number, endMs: number): { connection: ProxyConnection; step: ProxyStep } {
    const connection = new ProxyConnection(this, credential, ip, endMs, 'authorizing');
    if (this.settings.cache && this.cache.hit(credential, ip, nowMs)) {
      return { connection, step: { send: connection.admit(nowMs), note: 'cache-hit' } };
    }
    return { connection, step: { send: ['authorization'] } };
  }

  /** A connection already open when watching began: it sends nothing now, its ticker runs from `tickerOriginMs`. */
  alreadyOpen(credential: string, ip: string, endMs: number, tickerOriginMs: number): ProxyConnection {
    const connection = new ProxyConnection(this, credential, ip, endMs, 'open');
    connection.admit(tickerOriginMs, tickerOriginMs);
    return connection;
  }
}
