/** What a tunnel is given and what it ends with: shared by the request loop and the TCP tunnel. */
import type { TargetPolicy } from './targets.js';


export interface TunnelSettings {
  udp: boolean;
  targets: TargetPolicy;
  authorizeUrl?: string;
  log: (line: string) => void;
  /** Upstream connections idle this long are closed too. */
  idleTimeoutMs: number;
  /** false: dial IPv4 only, and say so as Go does ("dial tcp4 ..."). */
  ipv6: boolean;
}

export interface TunnelResult {
  target?: string;
  outcome: string;
  bytesIn: number;
  bytesOut: number;
  error?: boolean;
}
