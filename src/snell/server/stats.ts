/** What snell-serve counts, per server and per user: the connections add, the server reports. */

export interface UserTotals {
  connections: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
}

export interface SnellServerStats {
  accepted: number;
  authenticated: number;
  rejected: number;
  /** Closed at once, unauthenticated: the scans and the queue for them were full. */
  busy: number;
  open: number;
  users: Record<string, UserTotals>;
}
