/** What `xray-backend` counts, for GET /admin/stats and its `stats()`. */
import type { BackendState } from './state.js';

export interface BackendStats {
  requests: number;
  /** Requests by event type, plus `admin` and `invalid` (no readable event). */
  byEvent: Record<string, number>;
  /** Replies by status code ("aborted" when the client left first). */
  byStatus: Record<string, number>;
  /** Event decisions: `allow`, or the deny reason. */
  decisions: Record<string, number>;
  injected: { delayed: number; error: number; garbage: number };
  users: number;
  sessions: number;
  revoked: number;
}

/** The request counters; the user and session figures are read from the state when asked. */
export class RequestStats {
  requests = 0;
  readonly byEvent: Record<string, number> = {};
  readonly byStatus: Record<string, number> = {};
  readonly decisions: Record<string, number> = {};
  readonly injected = { delayed: 0, error: 0, garbage: 0 };

  /** One more under `key` in one of the tables. */
  static bump(table: Record<string, number>, key: string): void {
    table[key] = (table[key] ?? 0) + 1;
  }

  snapshot(state: BackendState): BackendStats {
    return {
      requests: this.requests,
      byEvent: { ...this.byEvent },
      byStatus: { ...this.byStatus },
      decisions: { ...this.decisions },
      injected: { ...this.injected },
      users: state.users.users.length,
      sessions: state.sessions().length,
      revoked: state.revokedCount,
    };
  }
}
