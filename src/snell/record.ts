/**
 * A Snell connection as a recording line (snell-serve --record): who it was matched to, by which
 * path and at what cost, and the first bytes it was matched on, so that `snell-auth --replay`
 * can ask the same question of another users file. The first bytes are the client's ciphertext
 * after obfs, nothing a users file does not already decide: nothing in it is masked.
 */
import type { RecordBase } from '../tap/recording.js';

export interface SnellRecord extends RecordBase {
  protocol: 'snell';
  /** ip:port */
  source: string;
  /** The matched user, or null: no user (a miss, or an empty store). */
  user: string | null;
  /** `cache`, `serial`, `parallel`; or the miss's reason. */
  path: string;
  trials: number;
  micros: number;
  /** Salt and first header, hex, after obfs: what the scan read. */
  firstBytes: string;
}

export interface SnellAuthenticated {
  source: string;
  ip: string;
  user: string | null;
  path: string;
  trials: number;
  micros: number;
  firstBytes: Uint8Array;
}

export function snellRecord(entry: SnellAuthenticated, at: Date, offsetMs: number): SnellRecord {
  return {
    protocol: 'snell', at: at.toISOString(), offsetMs: Math.round(offsetMs * 100) / 100, secrets: false,
    source: entry.source, user: entry.user, path: entry.path, trials: entry.trials, micros: entry.micros,
    firstBytes: Buffer.from(entry.firstBytes).toString('hex'),
  };
}
