/** A probe of a live Snell server: what to ask, and what came of it (client.ts runs it). */
import type { SnellVersion } from '../wire/first-packet.js';
import type { ObfsMode } from '../wire/obfs.js';
import type { KdfBackend } from '../wire/kdf.js';
import type { PaddingStyle } from '../wire/padding.js';


export type ProbeAction =
  | { kind: 'ping' }
  | { kind: 'quic'; host: string; port: number }
  | { kind: 'connect'; host: string; port: number; command: 'connect' | 'connect-v2' }
  | { kind: 'udp'; host: string; port: number };

export interface ProbeOptions {
  host: string;
  port: number;
  psk: string | Uint8Array;
  version: SnellVersion;
  obfs: ObfsMode;
  obfsHost?: string;
  action: ProbeAction;
  /** Sent through the tunnel (with the request, as Surge does), or as the UDP datagram. */
  send?: Uint8Array;
  timeoutMs: number;
  kdf?: KdfBackend;
  /** The first frame's padding (padding.ts); default `opensnell`. */
  paddingStyle?: PaddingStyle;
}

export type ProbeOutcome = 'authenticated' | 'rejected' | 'timeout' | 'connect-failed';

export interface ProbeResult {
  outcome: ProbeOutcome;
  reply?: { kind: 'tunnel' | 'pong' | 'error' | 'udp' | 'quic'; code?: number; message?: string };
  /** What came back through the tunnel (or the datagram's payload). */
  received?: Uint8Array;
  connectMs?: number;
  firstByteMs?: number;
  totalMs: number;
  /** What the timing or the bytes suggest, for people. */
  note?: string;
  /**
   * How a server that sent nothing closed: `reset` (it left our bytes unread, as OpenSnell does
   * with obfs off or tls) or `fin`; `afterMs` from the first packet.
   */
  close?: { kind: 'reset' | 'fin'; afterMs: number };
}
