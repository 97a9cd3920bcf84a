/**
 * The traffic an Xray node really sends its ExtAuth backend (docs/xray-extauth.md §2.7), as an arrival source:
 * connections arrive at a rate and live an exponentially distributed time; each is authorized
 * on a cache miss (an allowed reply fills the (credential, source IP) cache for ttl), then
 * sends connect, a heartbeat every H seconds on a ticker (a slow reply delays the next tick,
 * as Go's ticker drops ticks), and disconnect. `initialSessions` are live when the run starts,
 * with their heartbeats spread over one period, as on a node that has been up a while.
 */
import type { ConnectionFacts, EventType } from './wire/dialect.js';
import type { ArrivalSource } from '../load/target.js';
import type { XrayOp } from './load.js';

export interface MixSettings {
  arrivalRate: number;
  initialSessions: number;
  meanDurationS: number;
  heartbeatS: number;
  ttlS: number;
  /** The dialect keeps a positive cache (ExtAuth does; Hysteria 2 does not). */
  cache: boolean;
  kickOnDeny: boolean;
  events: readonly EventType[];
  /** Facts of generated connection i (credential and source IP spread over the users). */
  factsFor: (index: number) => ConnectionFacts;
  random?: () => number;
}

interface Session {
  facts: ConnectionFacts;
  endsAtMs: number;
  lastTickMs: number;
  ended: boolean;
  heartbeatBusy: boolean;
}

interface Due {
  atMs: number;
  type: EventType;
  session: Session;
}

export type MixOp = NonNullable<XrayOp> & { session: Session };

/** A binary min-heap on atMs: the event queue of every live connection. */
class DueHeap {
  private readonly items: Due[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): Due | undefined {
    return this.items[0];
  }
  push(item: Due): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.atMs <= a[i]!.atMs) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }
  pop(): Due | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.atMs < a[m]!.atMs) m = l;
        if (r < a.length && a[r]!.atMs < a[m]!.atMs) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export class XrayEventMix implements ArrivalSource<MixOp> {
  private readonly due = new DueHeap();
  private readonly cache = new Map<string, number>();
  private readonly random: () => number;
  private nextArrivalMs: number;
  private connections = 0;

  constructor(private readonly settings: MixSettings) {
    this.random = settings.random ?? Math.random;
    this.nextArrivalMs = settings.arrivalRate > 0 ? this.gapMs() : Infinity;
    for (let i = 0; i < settings.initialSessions; i++) {
      const session = this.newSession(0);
      // Connected some time ago: the next tick falls anywhere in one period.
      if (settings.heartbeatS > 0) {
        session.lastTickMs = -this.random() * settings.heartbeatS * 1000;
        this.scheduleHeartbeat(session, 0);
      }
      if (settings.events.includes('disconnect')) this.due.push({ atMs: session.endsAtMs, type: 'disconnect', session });
    }
  }

  /** Expected requests per second of each event type in the steady state (docs/xray-extauth.md §2.7). */
  expectedRates(users: number, ipsPerUser: number): Record<EventType, number> {
    const { arrivalRate: lambda, meanDurationS, heartbeatS, ttlS, cache } = this.settings;
    const pairs = Math.max(1, users * ipsPerUser);
    // Poisson arrivals per (credential, IP) pair: a miss refills the entry for ttl.
    const missRatio = cache && ttlS > 0 ? 1 / (1 + (lambda / pairs) * ttlS) : 1;
    const live = lambda * meanDurationS;
    return { authorization: lambda * missRatio, connect: lambda, heartbeat: heartbeatS > 0 ? live / heartbeatS : 0, disconnect: lambda };
  }

  peek(): number {
    this.dropStale();
    return Math.min(this.nextArrivalMs, this.due.peek()?.atMs ?? Infinity);
  }

  take(): MixOp {
    this.dropStale();
    const top = this.due.peek();
    if (top === undefined || this.nextArrivalMs < top.atMs) return this.arrive();
    this.due.pop();
    const session = top.session;
    if (top.type === 'disconnect') session.ended = true;
    if (top.type === 'heartbeat') {
      session.lastTickMs = top.atMs;
      session.heartbeatBusy = true;
    }
    return { type: top.type, facts: session.facts, session };
  }

  exhausted(): boolean {
    return false;
  }

  completed(op: MixOp, outcome: string, nowMs: number): void {
    const session = op.session;
    if (op.type === 'authorization') {
      if (outcome !== 'allow') {
        session.ended = true;
        return;
      }
      if (this.settings.cache && this.settings.ttlS > 0) this.cache.set(cacheKey(session.facts), nowMs + this.settings.ttlS * 1000);
      this.connect(session, nowMs);
    } else if (op.type === 'heartbeat') {
      session.heartbeatBusy = false;
      if (session.ended) return;
      if (this.settings.kickOnDeny && outcome === 'policy-deny') {
        // Kicked: the connection ends now, and says so.
        session.endsAtMs = nowMs;
        this.due.push({ atMs: nowMs, type: 'disconnect', session });
        return;
      }
      this.scheduleHeartbeat(session, nowMs);
    }
  }

  /** The engine could not send it: an authorization ends the attempt, a heartbeat waits for the next tick. */
  dropped(op: MixOp, nowMs: number): void {
    const session = op.session;
    if (op.type === 'authorization') session.ended = true;
    if (op.type === 'heartbeat') {
      session.heartbeatBusy = false;
      if (!session.ended) this.scheduleHeartbeat(session, nowMs);
    }
  }

  private arrive(): MixOp {
    const atMs = this.nextArrivalMs;
    this.nextArrivalMs += this.gapMs();
    const session = this.newSession(atMs);
    const cachedUntil = this.cache.get(cacheKey(session.facts));
    if (this.settings.events.includes('authorization') && !(cachedUntil !== undefined && cachedUntil > atMs)) {
      return { type: 'authorization', facts: session.facts, session };
    }
    // A cache hit: straight to connect (its request goes out now).
    this.connect(session, atMs, false);
    return { type: 'connect', facts: session.facts, session };
  }

  private newSession(startMs: number): Session {
    const lifeMs = -Math.log(1 - this.random()) * this.settings.meanDurationS * 1000;
    return { facts: this.settings.factsFor(this.connections++), endsAtMs: startMs + lifeMs, lastTickMs: startMs, ended: false, heartbeatBusy: false };
  }

  /** After a successful authorization: connect now, the ticker starts, disconnect at the end. */
  private connect(session: Session, atMs: number, sendConnect = true): void {
    if (sendConnect && this.settings.events.includes('connect')) this.due.push({ atMs, type: 'connect', session });
    session.endsAtMs = Math.max(session.endsAtMs, atMs);
    session.lastTickMs = atMs;
    if (this.settings.heartbeatS > 0) this.scheduleHeartbeat(session, atMs);
    if (this.settings.events.includes('disconnect')) this.due.push({ atMs: session.endsAtMs, type: 'disconnect', session });
  }

  private scheduleHeartbeat(session: Session, nowMs: number): void {
    if (!this.settings.events.includes('heartbeat')) return;
    const periodMs = this.settings.heartbeatS * 1000;
    let next = session.lastTickMs + periodMs;
    // Ticks missed while the last request was busy are dropped, one stays buffered.
    while (next + periodMs <= nowMs) next += periodMs;
    next = Math.max(next, nowMs);
    if (next < session.endsAtMs) this.due.push({ atMs: next, type: 'heartbeat', session });
  }

  private dropStale(): void {
    for (let top = this.due.peek(); top && top.session.ended; top = this.due.peek()) this.due.pop();
  }

  private gapMs(): number {
    return (-Math.log(1 - this.random()) / this.settings.arrivalRate) * 1000;
  }
}

function cacheKey(facts: ConnectionFacts): string {
  return `${facts.credential}\0${facts.sourceIp}`;
}
