/** What capnp-serve is given and what it counts: shared by the server and each connection. */
import type { AuthDecision, AuthRequest } from '../wire/schema.js';

export interface AuthServerOptions {
  socketPath: string;
  /** The socket file's mode; default 0o660. */
  mode?: number;
  decide: (request: AuthRequest) => Promise<AuthDecision> | AuthDecision;
  /** One line per call and per connection aborted; never a header value. Default: silent. */
  log?: (line: string) => void;
  /** Whether every call gets a log line (default true); aborted connections are always logged. */
  logCalls?: boolean;
  /** A frame larger than this aborts the connection; default (and at most) 64 MiB, C++'s limit. */
  maxFrameBytes?: number;
  /** Outstanding answers (Bootstraps and Calls) per connection before it is aborted; default 65536. */
  maxAnswers?: number;
  /**
   * Bytes held in partially received frames across all connections; a connection whose partial
   * frame would pass it is aborted. Default 256 MiB.
   */
  maxPartialBytes?: number;
  /** Traversal limit per message in words (8 bytes); default 512 Ki words (4 MiB). */
  traversalWords?: number;
}

export interface AuthServerStats {
  /** Connections open now, and since the start. */
  connections: number;
  connectionsTotal: number;
  /** Calls answered with a decision, per action. */
  decisions: Record<'pass' | 'block' | 'redirect' | 'other', number>;
  /** Calls answered with an exception Return (handler errors and unimplemented interface or method). */
  exceptions: number;
  /** Connections this side aborted (garbage, oversized frames, protocol errors, limits). */
  aborted: number;
  /** Of those, aborted for holding more than maxAnswers answers. */
  abortedMaxAnswers: number;
  /** Of those, aborted because their partial frame would have passed maxPartialBytes. */
  abortedMaxPartialBytes: number;
  /** Answers held now, all connections together. */
  answersHeld: number;
  /** Bytes held now in partially received frames, all connections together. */
  partialBytes: number;
  /** The most bytes partial frames held at once, measured after each chunk was accepted or refused. */
  partialBytesPeak: number;
}
