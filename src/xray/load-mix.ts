/**
 * The traffic an Xray node really sends its ExtAuth backend (docs/xray-extauth.md §2.7), as an arrival source:
 * connections arrive at a rate and live an exponentially distributed time; what each sends when
 * (authorization on a cache miss, connect, heartbeats on a ticker, disconnect) is model.ts's,
 * run on simulated time against the replies the load engine reports. `initialSessions` are live
 * when the run starts, with their heartbeats spread over one period, as on a node that has been
 * up a while.
 */
import type { ConnectionFacts, EventType } from './wire/dialect.js';
import type { ArrivalSource } from '../load/target.js';
import type { XrayOp } from './load.js';
import { XrayProxyModel, type ProxyConnection } from './model.js';

export interface MixSettings {
  /** New connections per second (0: none, only the initial ones). */
  arrivalRate: number;
  /** Connections live when the run starts. */
  initialSessions: number;
  /** Mean connection life, seconds. */
  meanDurationS: number;
  /** Heartbeat period, seconds (0: none). */
  heartbeatS: number;
  /** Cache entry life, seconds (0: no cache). */
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
  connection: ProxyConnection;
}

/** A request one connection sends at `atMs`. */
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
  private readonly model: XrayProxyModel;
  private readonly random: () => number;
  private nextArrivalMs: number;
  private connections = 0;

  constructor(private readonly settings: MixSettings) {
    this.random = settings.random ?? Math.random;
    this.model = new XrayProxyModel({
      cache: settings.cache, ttlMs: settings.ttlS * 1000, heartbeatMs: settings.heartbeatS * 1000, kickOnDeny: settings.kickOnDeny, events: settings.events,
    });
    this.nextArrivalMs = settings.arrivalRate > 0 ? this.gapMs() : Infinity;
    for (let i = 0; i < settings.initialSessions; i++) {
      const facts = this.settings.factsFor(this.connections++);
      const endMs = this.lifeMs();
      // Connected some time ago: the next tick falls anywhere in one period.
      const tickerOriginMs = settings.heartbeatS > 0 ? -this.random() * settings.heartbeatS * 1000 : 0;
      const session = { facts, connection: this.model.alreadyOpen(facts.credential, facts.sourceIp, endMs, tickerOriginMs) };
      this.scheduleLife(session, 0);
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
    // A new connection's first request (authorization, or connect on a cache hit) is due at once.
    if (this.nextArrivalMs < (this.due.peek()?.atMs ?? Infinity)) this.arrive();
    const { type, session } = this.due.pop()!;
    if (type === 'disconnect') session.connection.close();
    return { type, facts: session.facts, session };
  }

  exhausted(): boolean {
    return false;
  }

  completed(op: MixOp, outcome: string, nowMs: number): void {
    if (op.type === 'authorization') this.authorized(op.session, outcome === 'allow', nowMs);
    // A 401/403 to a heartbeat is the one reply class `policy-deny` (contract.ts).
    else if (op.type === 'heartbeat') this.heartbeatFinished(op.session, outcome === 'policy-deny', nowMs);
  }

  /** The engine could not send it: an authorization ends the attempt, a heartbeat waits for the next tick. */
  dropped(op: MixOp, nowMs: number): void {
    if (op.type === 'authorization') this.authorized(op.session, false, nowMs);
    else if (op.type === 'heartbeat') this.heartbeatFinished(op.session, false, nowMs);
  }

  /** The next connection arrives: its first request is due now. */
  private arrive(): void {
    const atMs = this.nextArrivalMs;
    this.nextArrivalMs += this.gapMs();
    const facts = this.settings.factsFor(this.connections++);
    const { connection, step } = this.model.arrive(facts.credential, facts.sourceIp, atMs, atMs + this.lifeMs());
    const session = { facts, connection };
    this.sendNow(session, step.send, atMs);
    if (step.note === 'cache-hit') this.scheduleLife(session, atMs);
  }

  private authorized(session: Session, allowed: boolean, nowMs: number): void {
    const step = session.connection.authorized(allowed, nowMs);
    if (step.note === 'refused') return;
    this.sendNow(session, step.send, nowMs);
    this.scheduleLife(session, nowMs);
  }

  private heartbeatFinished(session: Session, denied: boolean, nowMs: number): void {
    const step = session.connection.heartbeatFinished(denied, nowMs);
    // Kicked: the connection ends now, and says so.
    if (step.note === 'kicked') this.scheduleDisconnect(session);
    else this.scheduleHeartbeat(session, nowMs);
  }

  /** Once admitted: the first heartbeat, and the disconnect at the end of the connection's life. */
  private scheduleLife(session: Session, nowMs: number): void {
    this.scheduleHeartbeat(session, nowMs);
    this.scheduleDisconnect(session);
  }

  private scheduleHeartbeat(session: Session, nowMs: number): void {
    const atMs = session.connection.nextHeartbeatAt(nowMs);
    if (atMs !== undefined) this.due.push({ atMs, type: 'heartbeat', session });
  }

  private scheduleDisconnect(session: Session): void {
    if (this.settings.events.includes('disconnect')) this.due.push({ atMs: session.connection.endMs, type: 'disconnect', session });
  }

  private sendNow(session: Session, types: readonly EventType[], atMs: number): void {
    for (const type of types) this.due.push({ atMs, type, session });
  }

  /** Requests of connections already over: a refused one, or one whose disconnect has gone (a kick's, before the planned one). */
  private dropStale(): void {
    for (let top = this.due.peek(); top && isOver(top.session); top = this.due.peek()) this.due.pop();
  }

  private lifeMs(): number {
    return -Math.log(1 - this.random()) * this.settings.meanDurationS * 1000;
  }

  private gapMs(): number {
    return (-Math.log(1 - this.random()) / this.settings.arrivalRate) * 1000;
  }
}

function isOver(session: Session): boolean {
  return session.connection.phase === 'refused' || session.connection.phase === 'closed';
}
