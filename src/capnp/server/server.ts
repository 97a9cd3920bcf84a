/**
 * capnp-serve's server: an ExternalAuthService on a Unix socket (docs/proksi-external-auth.md §6),
 * each client served by its own Connection (connection.ts). This file starts and stops listening,
 * holds the limits every connection shares (§8: answers per connection, bytes in partial frames
 * across all connections, words read per message) and counts what happened in the stats.
 */
import { chmod } from 'node:fs/promises';
import net from 'node:net';
import { checkSocketPath, clearStaleSocket } from '../../shared/unix-socket.js';
import { listenOn } from '../../shared/listen.js';
import { describeFsError, InputError } from '../../shared/errors.js';
import { MAX_FRAME_BYTES } from '../wire/codec.js';
import { Connection, type ConnectionSettings } from './connection.js';
import type { AuthServerOptions, AuthServerStats } from './options.js';

/**
 * Answers (Bootstraps and Calls not yet both returned and finished) a connection may hold before
 * it is aborted.
 */
export const DEFAULT_MAX_ANSWERS = 65_536;
/** Bytes all connections together may hold in frames not yet completely received. */
export const DEFAULT_MAX_PARTIAL_BYTES = 256 * 1024 * 1024;
/**
 * Words (8 bytes) the reader may visit in one message, the Call's params included: 512 Ki words,
 * 4 MiB. A check() request from Proksi carries at most one HTTP request head, which pingora caps at
 * 1 MiB (MAX_HEADER_SIZE) and 256 headers for HTTP/1.1; with the host a second time and a few words
 * per header that is at most about 2 MiB, so 4 MiB leaves twice that. C++'s default (8 Mi words,
 * 64 MiB) is sized for any message of any schema; this service only ever reads check().
 */
export const DEFAULT_SERVE_TRAVERSAL_WORDS = 512 * 1024;

export interface AuthServer {
  path: string;
  stats(): AuthServerStats;
  /** Stops listening, closes every connection and removes the socket file. */
  close(): Promise<void>;
}

export async function startAuthServer(options: AuthServerOptions): Promise<AuthServer> {
  const mode = options.mode ?? 0o660;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new InputError('socket mode: expected permission bits from 000 to 777');
  const maxFrameBytes = Math.min(options.maxFrameBytes ?? MAX_FRAME_BYTES, MAX_FRAME_BYTES);
  const path = options.socketPath;
  const maxAnswers = positiveInteger(options.maxAnswers, DEFAULT_MAX_ANSWERS, 'maxAnswers');
  const maxPartialBytes = positiveInteger(options.maxPartialBytes, DEFAULT_MAX_PARTIAL_BYTES, 'maxPartialBytes');
  const traversalWords = positiveInteger(options.traversalWords, DEFAULT_SERVE_TRAVERSAL_WORDS, 'traversalWords');
  const stats: AuthServerStats = {
    connections: 0, connectionsTotal: 0, decisions: { pass: 0, block: 0, redirect: 0, other: 0 }, exceptions: 0, aborted: 0,
    abortedMaxAnswers: 0, abortedMaxPartialBytes: 0, answersHeld: 0, partialBytes: 0, partialBytesPeak: 0,
  };
  const connections = new Set<Connection>();
  const log = options.log ?? (() => {});
  const settings: ConnectionSettings = {
    decide: options.decide, log, logCall: options.logCalls === false || options.log === undefined ? undefined : log, maxFrameBytes, maxAnswers, maxPartialBytes, traversalWords, stats,
  };

  checkSocketPath(path, 'socket');
  await clearStaleSocket(path, 'socket');
  const server = net.createServer((socket) => {
    stats.connections++;
    stats.connectionsTotal++;
    const connection = new Connection(socket, stats.connectionsTotal, settings);
    connections.add(connection);
    socket.once('close', () => {
      connections.delete(connection);
      stats.connections--;
    });
  });
  await listenOn(server, { path });
  try {
    await chmod(path, mode);
  } catch (error) {
    server.close();
    throw new InputError(`socket ${path}: cannot set its mode: ${describeFsError(error)}`);
  }

  let closing: Promise<void> | undefined;
  return {
    path,
    stats: () => {
      let answersHeld = 0;
      for (const connection of connections) answersHeld += connection.answersHeld;
      return { ...structuredClone(stats), answersHeld };
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        // Node removes the socket file once the listening handle is closed.
        server.close(() => resolve());
        for (const connection of connections) connection.destroy();
      });
      return closing;
    },
  };
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new InputError(`${name}: expected a positive integer, got ${value}`);
  return value;
}
