/**
 * What the backend remembers between requests, and the decisions made from it. Decisions depend
 * only on the credential and this state, never on the email/level hints a request carries (X28).
 *
 * Sessions are the proxy's live connections as its events report them, keyed by connection id:
 * an allowed authorization, a connect or a heartbeat makes one live (so events may arrive in any
 * order, repeated, or after a backend restart: X19, X23-X25), a disconnect frees it, and one not
 * heard from for max(idle time, 3 observed heartbeat intervals) expires.
 *
 * | user                                   | authorization | heartbeat | connect, disconnect |
 * |----------------------------------------|---------------|-----------|---------------------|
 * | allowed                                | 200 + user    | 200       | 204                 |
 * | unknown credential                     | 401           | 401       | 204                 |
 * | revoked, disabled, expired, over quota | 403           | 401       | 204                 |
 * | k = maxIps other IPs live              | 403           | 200       | 204                 |
 *
 * Hysteria 2 answers every decision with 200: {"ok":true,"id"} or {"ok":false}. Unknown and
 * denied users differ in status (401/403) but not in class: both are policy denies (X31).
 */
import { canonicalIp } from '../../shared/ip.js';
import type { EventType } from '../wire/dialect.js';
import { normalizeCredential, type CredentialKind, type UsersSnapshot, type XrayUser } from './users.js';

export type DenyReason = 'unknown' | 'revoked' | 'disabled' | 'expired' | 'over-quota' | 'max-ips';

export type Decision = { allow: true; user: XrayUser } | { allow: false; reason: DenyReason };

/** What an event says about a connection; only the credential is required. */
export interface EventFacts {
  credential: string;
  connectionId?: string;
  sourceIp?: string;
}

export interface Session {
  /** Absent when the events carried none (Hysteria 2): then one session per credential and IP. */
  connectionId?: string;
  credential: string;
  /** Canonical source IP ('' when the event carried none). */
  ip: string;
  firstSeen: number;
  lastSeen: number;
  /** The event that last refreshed it. */
  via: EventType;
  /** Time between its last two connect/heartbeat events, once known. */
  intervalMs?: number;
}

/** `credential` as stored; `known`: in the users file (a revocation of an unknown one applies if it is added later). */
export interface AdminResult {
  credential: string;
  known: boolean;
  changed: boolean;
}

export interface BackendStateOptions {
  kind: CredentialKind;
  /** A session not heard from for this long (or 3 heartbeat intervals, if longer) expires. */
  sessionIdleMs: number;
  /** Beyond this many sessions new ones are not recorded (junk connection ids cannot exhaust memory). */
  maxSessions?: number;
  now?: () => number;
}

/** The HTTP status of a deny (ExtAuth dialects; Hysteria 2 answers 200 {"ok":false} instead). */
export function denyStatus(event: EventType, reason: DenyReason): 401 | 403 {
  if (event === 'heartbeat') return 401;
  return reason === 'unknown' ? 401 : 403;
}

export class BackendState {
  private snapshot: UsersSnapshot;
  private readonly revoked = new Set<string>();
  /** By connection id, or by credential and IP for events without one. */
  private readonly sessionsById = new Map<string, Session>();
  /** credential -> keys of its sessions. */
  private readonly byCredential = new Map<string, Set<string>>();
  private readonly now: () => number;
  private readonly maxSessions: number;

  constructor(users: UsersSnapshot, private readonly options: BackendStateOptions) {
    this.snapshot = users;
    this.now = options.now ?? Date.now;
    this.maxSessions = options.maxSessions ?? 100_000;
  }

  get users(): UsersSnapshot {
    return this.snapshot;
  }

  /** A new users file: taken as a whole. Sessions and revocations stay. */
  replaceUsers(snapshot: UsersSnapshot): void {
    this.snapshot = snapshot;
  }

  /** The user for a credential as it arrived on the wire (UUIDs compare case-insensitively). */
  lookup(credential: string): XrayUser | undefined {
    const key = this.key(credential);
    return key === undefined ? undefined : this.snapshot.byCredential.get(key);
  }

  /** Whether the user may connect at all, before any session limit. */
  standing(credential: string): Decision {
    const user = this.lookup(credential);
    if (!user) return { allow: false, reason: 'unknown' };
    if (this.revoked.has(user.credential)) return { allow: false, reason: 'revoked' };
    if (!user.enabled) return { allow: false, reason: 'disabled' };
    if (user.expiresAt !== undefined && this.now() >= user.expiresAt) return { allow: false, reason: 'expired' };
    if (user.quotaBytes !== undefined && user.usedBytes >= user.quotaBytes) return { allow: false, reason: 'over-quota' };
    return { allow: true, user };
  }

  /**
   * A new connection. Allowed users within their IP limit get a live session at once, so the
   * (k+1)-th IP is refused here even before the k-th connection's connect arrives.
   */
  authorize(facts: EventFacts): Decision {
    const decision = this.standing(facts.credential);
    if (!decision.allow) return decision;
    const { user } = decision;
    const ip = ipKey(facts.sourceIp);
    if (user.maxIps !== undefined) {
      const others = this.liveIps(user.credential);
      others.delete(ip);
      if (others.size >= user.maxIps) return { allow: false, reason: 'max-ips' };
    }
    this.touch(user.credential, facts, ip, 'authorization');
    return decision;
  }

  /**
   * A live connection checking in: denied (401) if the user may no longer connect, whatever the
   * IP limit; otherwise refreshed, or adopted if the backend has never seen it (X23).
   */
  heartbeat(facts: EventFacts): Decision {
    const standing = this.standing(facts.credential);
    // A denied user's heartbeats must not keep its sessions alive (or hold IP slots).
    if (standing.allow) this.touch(standing.user.credential, facts, ipKey(facts.sourceIp), 'heartbeat');
    return standing;
  }

  /** Always accepted: the proxy has let the connection in (it may be a cache hit, X19). */
  connect(facts: EventFacts): void {
    const user = this.lookup(facts.credential);
    if (user) this.touch(user.credential, facts, ipKey(facts.sourceIp), 'connect');
  }

  /** Always accepted, idempotent, and fine before connect or for an unknown id (X24). */
  disconnect(facts: EventFacts): void {
    if (facts.connectionId === undefined || facts.connectionId === '') return;
    this.remove(facts.connectionId);
  }

  revoke(credential: string): AdminResult | undefined {
    const key = this.key(credential);
    if (key === undefined) return undefined;
    const changed = !this.revoked.has(key);
    this.revoked.add(key);
    return { credential: key, known: this.snapshot.byCredential.has(key), changed };
  }

  restore(credential: string): AdminResult | undefined {
    const key = this.key(credential);
    if (key === undefined) return undefined;
    return { credential: key, known: this.snapshot.byCredential.has(key), changed: this.revoked.delete(key) };
  }

  isRevoked(credential: string): boolean {
    const key = this.key(credential);
    return key !== undefined && this.revoked.has(key);
  }

  get revokedCount(): number {
    return this.revoked.size;
  }

  /** Live sessions, oldest first. */
  sessions(): Session[] {
    this.sweep();
    return [...this.sessionsById.values()].map((s) => ({ ...s }));
  }

  /** Distinct source IPs with a live session for a stored credential. */
  liveIps(credential: string): Set<string> {
    const ips = new Set<string>();
    const now = this.now();
    for (const id of this.byCredential.get(credential) ?? []) {
      const session = this.sessionsById.get(id)!;
      if (this.expired(session, now)) this.remove(id);
      else ips.add(session.ip);
    }
    return ips;
  }

  /** Drops expired sessions; returns how many. */
  sweep(): number {
    const now = this.now();
    let dropped = 0;
    for (const [key, session] of [...this.sessionsById]) {
      if (this.expired(session, now)) {
        this.remove(key);
        dropped++;
      }
    }
    return dropped;
  }

  private key(credential: string): string | undefined {
    return normalizeCredential(credential, this.options.kind);
  }

  private expired(session: Session, now: number): boolean {
    const allowance = Math.max(this.options.sessionIdleMs, 3 * (session.intervalMs ?? 0));
    return now - session.lastSeen > allowance;
  }

  private touch(credential: string, facts: EventFacts, ip: string, via: EventType): void {
    const connectionId = facts.connectionId === '' ? undefined : facts.connectionId;
    const id = connectionId ?? `${credential}\u0000${ip}`;
    const now = this.now();
    const existing = this.sessionsById.get(id);
    // A connection heard from again continues its session, even past the idle time if not yet
    // swept: that is how a heartbeat interval longer than the idle time is learned.
    if (existing && existing.credential === credential) {
      // The gap between an authorization and its connect says nothing about the heartbeat period.
      if (via !== 'authorization' && existing.via !== 'authorization' && now > existing.lastSeen) existing.intervalMs = now - existing.lastSeen;
      existing.lastSeen = now;
      existing.ip = ip;
      existing.via = via;
      return;
    }
    if (existing) this.remove(id);
    if (this.sessionsById.size >= this.maxSessions && this.sweep() === 0) return;
    this.sessionsById.set(id, { connectionId, credential, ip, firstSeen: now, lastSeen: now, via });
    let ids = this.byCredential.get(credential);
    if (!ids) this.byCredential.set(credential, (ids = new Set()));
    ids.add(id);
  }

  private remove(id: string): void {
    const session = this.sessionsById.get(id);
    if (!session) return;
    this.sessionsById.delete(id);
    const ids = this.byCredential.get(session.credential);
    ids?.delete(id);
    if (ids?.size === 0) this.byCredential.delete(session.credential);
  }
}

function ipKey(ip: string | undefined): string {
  return ip === undefined ? '' : canonicalIp(ip);
}
