/**
 * A multi-user Snell server that behaves like OpenSnell alpha (docs/snell.md §9): obfs, then salt and
 * first header read whole (a short read closes at once), trial authentication over a users
 * snapshot (IP cache, serial up to 16 users, parallel above), 50 ms before closing on no match
 * or an empty store (even after the client's FIN), closed with a reset when client bytes are
 * left unread as Go leaves them, a fresh salt for the reply stream, then the request
 * (tunnel.ts). With a single PSK it is OpenSnell's single-user path: no cache, no delay.
 * Unlike OpenSnell, scans are bounded (auth-limiter.ts): a connection past the scans running and
 * the queue is closed at once as `busy`; an IP-cache hit never waits for a scan slot.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { AeadDirection, aeadKey } from '../wire/aead.js';
import { deriveSnellKey, SALT_BYTES, selectKdf, type KdfBackend } from '../wire/kdf.js';
import { HEADER_SEALED_BYTES } from '../wire/frame.js';
import { ObfsError, ObfsUnwrapper, ObfsWrapper } from './obfs-stream.js';
import { TLS_HELLO_DATA_OFFSET, type ObfsMode } from '../wire/obfs.js';
import { SnellStreamReader, SnellStreamWriter } from '../wire/stream.js';
import { TrialAuthenticator, type MatchedKey, type ScanGate } from '../model.js';
import { AuthLimiter, defaultAuthQueue, defaultMaxPendingAuth } from './auth-limiter.js';
import { UserStore, type SnellUser } from '../users.js';
import { serveTunnel, type TunnelSettings, type TunnelResult } from './tunnel.js';
import type { TargetPolicy } from './targets.js';
import { canonicalIp } from '../../shared/ip.js';
import { startQuicRelay } from './quic-relay.js';
import { utf8 } from '../../shared/bytes.js';
import { listenOn } from '../../shared/listen.js';
import { InputError } from '../../shared/errors.js';

/** OpenSnell's unauthDelay. */
export const NO_MATCH_DELAY_MS = 50;
const FIRST_BYTES = SALT_BYTES + HEADER_SEALED_BYTES;

export interface SnellServerOptions {
  host: string;
  port: number;
  /** Multi-user: trial authentication over these users. */
  users?: UserStore | readonly SnellUser[];
  /** Single-user: this PSK, OpenSnell's plain path. */
  psk?: string;
  obfs: ObfsMode;
  udp: boolean;
  /** v5 QUIC envelopes on the same port, over UDP. */
  quic?: boolean;
  targets: TargetPolicy;
  authorizeUrl?: string;
  /** false: no client-IP cache, every connection scans (for measuring the cold path). */
  ipCache?: boolean;
  /** Scans (trial authentications past the IP cache) running at once; default 2 per core. */
  maxPendingAuth?: number;
  /** Connections waiting for a scan slot; past it they are closed as `busy`. Default 16 per core. */
  authQueue?: number;
  /** Closes a connection with no traffic for this long; default 300 s. */
  idleTimeoutMs?: number;
  /** false: targets are dialled over IPv4 only, as OpenSnell with ipv6 off ("dial tcp4 ..."). */
  ipv6?: boolean;
  kdf?: KdfBackend;
  log?: (line: string) => void;
}

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

export interface SnellServer {
  address: net.AddressInfo;
  stats(): SnellServerStats;
  /** Scans running and connections waiting for one, now. */
  authLoad(): { running: number; waiting: number; maxRunning: number; maxWaiting: number };
  /** Replaces the users as a whole snapshot; handshakes under way keep the one they started with. */
  replaceUsers(users: UserStore | readonly SnellUser[]): void;
  close(): Promise<void>;
}

export async function startSnellServer(options: SnellServerOptions): Promise<SnellServer> {
  const kdf = options.kdf ?? (await selectKdf());
  const multiUser = options.users !== undefined;
  const authenticator = multiUser ? await TrialAuthenticator.create(options.users!, { kdf, detectLegacy: false, cacheCapacity: options.ipCache === false ? 0 : undefined }) : undefined;
  const singlePsk = options.psk === undefined ? undefined : utf8.encode(options.psk);
  const log = options.log ?? (() => undefined);
  const stats: SnellServerStats = { accepted: 0, authenticated: 0, rejected: 0, busy: 0, open: 0, users: {} };
  const limiter = new AuthLimiter(options.maxPendingAuth ?? defaultMaxPendingAuth(), options.authQueue ?? defaultAuthQueue());
  const sockets = new Set<net.Socket>();
  const settings: TunnelSettings = {
    udp: options.udp, targets: options.targets, authorizeUrl: options.authorizeUrl, log, idleTimeoutMs: options.idleTimeoutMs ?? 300_000, ipv6: options.ipv6 ?? true,
  };

  const handle = async (socket: net.Socket): Promise<void> => {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    const ip = canonicalIp(socket.remoteAddress ?? '');
    const unwrap = new ObfsUnwrapper(options.obfs, 'server');
    const wrap = new ObfsWrapper(options.obfs, 'server');
    let first = Buffer.alloc(0);
    /** Raw bytes received when salt and header were whole: what Go's buffered http reader has taken by then. */
    let receivedAtHeader = 0;
    let ended = false;
    const finish = (outcome: string): void => {
      if (ended) return;
      ended = true;
      log(`${remote} - - ${outcome}`);
    };
    // Read salt and first header whole; anything short closes at once, without the delay.
    const firstBytes = await new Promise<Buffer | undefined>((resolve) => {
      const onData = (chunk: Buffer): void => {
        try {
          first = Buffer.concat([first, unwrap.push(chunk)]);
        } catch (error) {
          socket.off('data', onData);
          finish(`rejected (${error instanceof ObfsError ? error.message : 'bad obfs'})`);
          resolve(undefined);
          return;
        }
        if (first.length >= FIRST_BYTES) {
          socket.off('data', onData);
          socket.pause();
          receivedAtHeader = socket.bytesRead;
          resolve(first);
        }
      };
      socket.on('data', onData);
      // A FIN before the header is whole is a short read: closed at once. (The server is half-open
      // so that a FIN after it does not end the socket under the no-match delay.)
      socket.once('end', () => resolve(undefined));
      socket.once('close', () => resolve(undefined));
    });
    if (!firstBytes) {
      if (!ended) finish(`rejected (closed after ${first.length} bytes, before salt and header)`);
      stats.rejected++;
      socket.destroy();
      return;
    }
    const salt = firstBytes.subarray(0, SALT_BYTES);
    let user: string;
    let psk: Uint8Array;
    const matched: MatchedKey = {};
    if (authenticator) {
      // A connection closed while it waits for a scan slot (the idle timeout, a reset noticed)
      // gives its place up. The socket is paused, so a client's FIN alone is not seen here.
      const gone = new AbortController();
      socket.once('close', () => gone.abort());
      const gate: ScanGate = () => limiter.acquire(gone.signal);
      const outcome = await authenticator.authenticateGated(firstBytes, ip, matched, gate);
      if (!outcome.ok && outcome.reason === 'busy') {
        stats.busy++;
        finish(`busy (scans: ${limiter.runningCount} running, ${limiter.waitingCount} waiting; --max-pending-auth ${limiter.maxRunning}, --auth-queue ${limiter.maxWaiting})`);
        socket.destroy();
        return;
      }
      if (socket.destroyed || (!outcome.ok && outcome.reason === 'gone')) {
        finish(`closed by the client during authentication${!outcome.ok && outcome.reason === 'gone' ? ' (while waiting for a scan slot)' : ''}`);
        socket.destroy();
        return;
      }
      if (!outcome.ok) {
        stats.rejected++;
        await new Promise((resolve) => setTimeout(resolve, NO_MATCH_DELAY_MS));
        finish(`rejected (${outcome.reason === 'empty-store' ? 'no users' : 'no user matches'}, ${outcome.trials} trials)`);
        closeAsGoWould(socket, options.obfs, receivedAtHeader);
        return;
      }
      user = outcome.user;
      psk = matched.store!.psk(outcome.index);
    } else {
      user = 'default';
      psk = singlePsk!;
    }
    // The scan's own derivation keys the reader (OpenSnell derives it once more: ~30 µs, not
    // visible on the wire); the reply gets a fresh salt and its own key.
    const readKey = aeadKey(matched.derived ?? (await deriveSnellKey(kdf, psk, salt)), 'aes-128-gcm');
    const reader = new SnellStreamReader(new AeadDirection('aes-128-gcm', readKey));
    let payloads: Uint8Array[];
    try {
      payloads = reader.push(firstBytes.subarray(SALT_BYTES));
    } catch {
      // Single-user: a wrong PSK fails on the first open and closes at once.
      stats.rejected++;
      finish('rejected (the first frame does not authenticate)');
      socket.destroy();
      return;
    }
    const replySalt = randomBytes(SALT_BYTES);
    const writeKey = aeadKey(await deriveSnellKey(kdf, psk, replySalt), 'aes-128-gcm');
    const writer = new SnellStreamWriter(new AeadDirection('aes-128-gcm', writeKey), replySalt);
    // The client may have gone while the keys were derived: nothing to serve then.
    if (socket.destroyed) {
      finish(`closed by the client after authenticating (${user})`);
      return;
    }
    stats.authenticated++;
    const totals = (stats.users[user] ??= { connections: 0, bytesIn: 0, bytesOut: 0, errors: 0 });
    totals.connections++;
    ended = true;
    const result: TunnelResult = await serveTunnel({ socket, reader, writer, unwrap, wrap, payloads, user, remote }, settings);
    totals.bytesIn += result.bytesIn;
    totals.bytesOut += result.bytesOut;
    if (result.error) totals.errors++;
    log(`${remote} ${user} ${result.target ?? '-'} ${result.outcome} in=${result.bytesIn} out=${result.bytesOut}`);
  };

  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    stats.accepted++;
    stats.open++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(options.idleTimeoutMs ?? 300_000, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      stats.open--;
      sockets.delete(socket);
    });
    handle(socket).catch((error: unknown) => {
      log(`${socket.remoteAddress}:${socket.remotePort} - - error (${(error as Error).message})`);
      socket.destroy();
    });
  });
  // A burst of new connections (a node restarting its clients) must not overflow the accept queue.
  await listenOn(server, { host: options.host, port: options.port, backlog: 4096 }).catch(async (error: unknown) => {
    await authenticator?.close();
    throw error;
  });
  const address = server.address() as net.AddressInfo;
  let quic;
  try {
    quic = options.quic
      ? await startQuicRelay({ host: options.host, port: address.port, authenticator, limiter, psk: singlePsk, kdf, targets: options.targets, log, idleTimeoutMs: options.idleTimeoutMs ?? 300_000 })
      : undefined;
  } catch (error) {
    server.close();
    await authenticator?.close();
    throw new InputError(`--quic: cannot listen on udp ${options.host}:${address.port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return {
    address,
    stats: () => stats,
    authLoad: () => ({ running: limiter.runningCount, waiting: limiter.waitingCount, maxRunning: limiter.maxRunning, maxWaiting: limiter.maxWaiting }),
    replaceUsers(users) {
      if (!authenticator) throw new Error('a single-PSK server has no users to replace');
      authenticator.replaceUsers(users instanceof UserStore ? users : UserStore.fromUsers(users));
    },
    async close() {
      quic?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      await authenticator?.close();
    },
  };
}

/**
 * OpenSnell's reader takes from the socket only what it needs for salt and header, so closing
 * with the client's other bytes still in the kernel makes Linux send a reset, not a FIN: obfs
 * off reads 39 bytes; tls reads the ClientHello up to the embedded data (skip, then a 2-byte
 * length) and 39 bytes of it, leaving the rest of the hello; http's bufio.Reader and the
 * Content-Length body read take the request whole with whatever arrived along with it.
 */
function closeAsGoWould(socket: net.Socket, obfs: ObfsMode, receivedAtHeader: number): void {
  const consumed = obfs === 'off' ? FIRST_BYTES : obfs === 'tls' ? TLS_HELLO_DATA_OFFSET + FIRST_BYTES : receivedAtHeader;
  // bytesRead counts what arrived during the delay too: Go would not have read that either.
  if (socket.bytesRead > consumed) socket.resetAndDestroy();
  else socket.destroy();
}
